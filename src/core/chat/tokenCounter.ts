import * as crypto from 'crypto';
import { ServerConnection } from '../llama/serverConnection';

// Counting tokens for the prompt budget. The exact count comes from the loaded model's own
// tokenizer through llama-server's /tokenize; when that fails (old server, server busy) an
// estimate takes over that errs on the high side, so a prompt is cut a little early rather than
// overflowing the context window.

export interface TokenCounter {
  count(text: string, signal?: AbortSignal): Promise<number>;
  /** true when counts come from the model's tokenizer. */
  readonly exact: boolean;
}

/**
 * Characters per token for the estimate. Measured with the Qwen2 tokenizer (the one Qwen2.5-Coder
 * uses) through llama-server /tokenize: TypeScript sources ≈ 3.6, English prose ≈ 4.3, minified JS
 * ≈ 2.9, CJK text ≈ 1.3 (see test/unit/chat/tokenCounter.test.ts). 3.0 keeps the estimate above the
 * truth for code and prose; non-ASCII characters count one token each.
 */
export const ESTIMATE_CHARS_PER_TOKEN = 3.0;

export function estimateTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) < 128) ascii++;
    else other++;
  }
  return Math.ceil(ascii / ESTIMATE_CHARS_PER_TOKEN + other);
}

export class EstimateTokenCounter implements TokenCounter {
  readonly exact = false;
  async count(text: string): Promise<number> {
    return estimateTokens(text);
  }
}

/** Counts with POST /tokenize; caches by content hash; falls back to the estimate on failure. */
export class LlamaTokenCounter implements TokenCounter {
  private readonly cache = new Map<string, number>();
  private failures = 0;

  constructor(private readonly conn: Pick<ServerConnection, 'url' | 'apiKey'>, private readonly maxCache = 512) {}

  get exact(): boolean {
    return this.failures === 0;
  }

  async count(text: string, signal?: AbortSignal): Promise<number> {
    if (text.length === 0) return 0;
    const key = crypto.createHash('sha1').update(text).digest('base64');
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      // Refresh its place: the Map's order is the eviction order.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    let n: number;
    try {
      n = await tokenizeCount(this.conn, text, signal);
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      this.failures++;
      return estimateTokens(text);
    }
    this.cache.set(key, n);
    if (this.cache.size > this.maxCache) this.cache.delete(this.cache.keys().next().value as string);
    return n;
  }
}

export async function tokenizeCount(conn: Pick<ServerConnection, 'url' | 'apiKey'>, text: string, signal?: AbortSignal): Promise<number> {
  const res = await fetch(conn.url + '/tokenize', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${conn.apiKey}` },
    body: JSON.stringify({ content: text, add_special: false }),
    signal,
  });
  if (!res.ok) throw new Error(`llama-server /tokenize failed (${res.status})`);
  const body = (await res.json()) as { tokens?: unknown[] };
  if (!Array.isArray(body.tokens)) throw new Error('llama-server /tokenize returned no tokens');
  return body.tokens.length;
}
