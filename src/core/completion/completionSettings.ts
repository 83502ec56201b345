import { DEFAULT_EXTRA_OPTIONS, ExtraContextOptions } from './extraContext';
import { DEFAULT_FIM_OPTIONS, FimContextOptions } from './fimContext';

// What the completion engine may do: its limits and each reuse feature, as one plain object
// (the extension builds it from `strata.*` settings; the benchmark switches features off).

export interface ReuseFeatures {
  /**
   * Ask for cache_prompt and n_cache_reuse 256: the server keeps the KV cache of the last prompt
   * and shifts reusable chunks of it into place. Off, the request leaves both to llama-server's
   * defaults (cache_prompt on, no chunk shifting), as a client that does not know them would.
   */
  serverCache: boolean;
  /** LRU of answers by context hash. */
  clientCache: boolean;
  /** Typing the start of the shown suggestion serves the rest from memory. */
  typeThrough: boolean;
  /** The prefix window starts on a 32-line grid. */
  stableWindow: boolean;
  /** Extra-context chunks change only in idle time and only at the ends of the list. */
  stableChunks: boolean;
  /** n_predict 0 request in idle time after the chunk set changed. */
  warmUp: boolean;
  /** After an accept, ask for the next completion at once. */
  prefetch: boolean;
  /** A request for the context already in flight waits for that one. */
  joinInFlight: boolean;
  /**
   * While the user types fast, wait longer than the debounce setting (up to +250 ms): a request
   * the next keystroke cancels still costs the server a prefill, and delays the one that counts.
   */
  adaptiveDebounce: boolean;
}

export const REUSE_ALL: ReuseFeatures = Object.freeze({
  serverCache: true,
  clientCache: true,
  typeThrough: true,
  stableWindow: true,
  stableChunks: true,
  warmUp: true,
  prefetch: true,
  joinInFlight: true,
  adaptiveDebounce: true,
});

export const REUSE_NONE: ReuseFeatures = Object.freeze({
  serverCache: false,
  clientCache: false,
  typeThrough: false,
  stableWindow: false,
  stableChunks: false,
  warmUp: false,
  prefetch: false,
  joinInFlight: false,
  adaptiveDebounce: false,
});

export interface CompletionSettings {
  maxTokens: number;
  maxLines: number;
  /** llama-server stops generating after this long (once a line is complete). */
  maxPredictMs: number;
  /** Whole-request limit, after which the request is aborted. */
  requestTimeoutMs: number;
  /** Most tokens of extra context, also bounded by what the server's context leaves. */
  extraTokens: number;
  /**
   * Add llama.cpp's "infill" sampler (as llama.vscode does): it ends the fill early when
   * end-of-text is plausible and merges tokens that share a prefix. Off by default: greedy
   * decoding plus the structural stops here (line break, end of block, n_indent) end fills already,
   * and with an unsure model the sampler returns nothing at all.
   */
  infillSampler: boolean;
  fim: FimContextOptions;
  extra: ExtraContextOptions;
  reuse: ReuseFeatures;
}

export const DEFAULT_COMPLETION_SETTINGS: CompletionSettings = {
  maxTokens: 64,
  maxLines: 8,
  maxPredictMs: 1000,
  requestTimeoutMs: 30_000,
  extraTokens: 12_000,
  infillSampler: false,
  fim: DEFAULT_FIM_OPTIONS,
  extra: DEFAULT_EXTRA_OPTIONS,
  reuse: REUSE_ALL,
};
