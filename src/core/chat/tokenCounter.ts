import * as crypto from 'crypto';
import { LlamaClient } from '../llama/client';
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
 * The fallback estimate, when /tokenize cannot be asked. Counts word pieces: a run of letters is a
 * token per 6 letters, digits a token per 3, each punctuation character a token, a line break a
 * token, a non-ASCII character 0.75 of one; then adds 10 %. Measured against the Qwen2 tokenizer
 * (Qwen2.5-Coder's) through llama-server /tokenize (estimate / true count): TypeScript 145 %,
 * Python 142 %, English prose 123 %, CSS 137 %, minified JS 116 %, package-lock JSON 106 %,
 * Chinese/Japanese 134 %. A plain characters/4 rule would undercount minified JS (1.85 characters
 * per token) and JSON (2.35) and overflow the window; this one errs high everywhere, so a prompt is
 * cut a little early rather than rejected by the server.
 */
export function estimateTokens(text: string): number {
  let n = 0;
  for (const m of text.matchAll(/[A-Za-z]+|\d+|\s+|[\u0080-\uffff]|[^\sA-Za-z\d\u0080-\uffff]/g)) {
    const s = m[0];
    const c = s.charCodeAt(0);
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) n += Math.ceil(s.length / 6);
    else if (c >= 48 && c <= 57) n += Math.ceil(s.length / 3);
    else if (c <= 32) n += s.includes('\n') || s.length > 1 ? 1 : 0;
    else if (c >= 128) n += 0.75;
    else n += 1;
  }
  return Math.ceil(n * 1.1);
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
  private readonly client: LlamaClient;
  private failures = 0;

  constructor(
    conn: Pick<ServerConnection, 'url' | 'apiKey'>,
    private readonly maxCache = 512,
  ) {
    this.client = new LlamaClient(conn);
  }

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
      n = (await this.client.tokenize(text, signal)).length;
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
