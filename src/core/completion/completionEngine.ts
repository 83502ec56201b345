import * as crypto from 'crypto';
import { InfillResponse, LlamaClient } from '../llama/client';
import { buildFimContext, DEFAULT_FIM_OPTIONS, DocumentSnapshot, FimContextOptions } from './fimContext';
import { postProcessCompletion } from './postProcess';

// Asks llama-server for a fill-in-the-middle completion at the cursor and remembers recent
// answers, so that asking twice for the same context costs nothing.

export interface CompletionSettings {
  maxTokens: number;
  maxLines: number;
  /** Give up generating after this long; the user has moved on. */
  maxPredictMs: number;
  fim: FimContextOptions;
}

export const DEFAULT_COMPLETION_SETTINGS: CompletionSettings = {
  maxTokens: 64,
  maxLines: 8,
  maxPredictMs: 2500,
  fim: DEFAULT_FIM_OPTIONS,
};

export interface CompletionResult {
  text: string;
  fromCache: boolean;
  latencyMs: number;
  promptTokens?: number;
  cachedTokens?: number;
}

export class CompletionEngine {
  private readonly cache = new Map<string, string | undefined>();
  private readonly cacheLimit = 256;

  constructor(private readonly client: () => LlamaClient, private readonly settings: () => CompletionSettings) {}

  async complete(doc: DocumentSnapshot, signal?: AbortSignal): Promise<CompletionResult | undefined> {
    const s = this.settings();
    const ctx = buildFimContext(doc, s.fim);
    const key = crypto.createHash('sha256').update(ctx.prefix).update('\0').update(ctx.suffix).digest('hex');
    const t0 = Date.now();
    if (this.cache.has(key)) {
      const text = this.cache.get(key);
      return text === undefined ? undefined : { text, fromCache: true, latencyMs: 0 };
    }
    const res: InfillResponse = await this.client().infill({
      input_prefix: ctx.prefix,
      input_suffix: ctx.suffix,
      input_extra: [],
      n_predict: s.maxTokens,
      t_max_predict_ms: s.maxPredictMs,
      cache_prompt: true,
      // Code wants the likeliest tokens, not creative ones.
      temperature: 0,
      top_k: 40,
      top_p: 0.95,
    }, signal);
    const text = postProcessCompletion(res.content ?? '', ctx, { maxLines: s.maxLines });
    this.remember(key, text);
    if (text === undefined) return undefined;
    return {
      text,
      fromCache: false,
      latencyMs: Date.now() - t0,
      promptTokens: res.timings?.prompt_n,
      cachedTokens: res.timings?.cache_n ?? res.tokens_cached,
    };
  }

  private remember(key: string, text: string | undefined): void {
    this.cache.set(key, text);
    if (this.cache.size > this.cacheLimit) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }
}
