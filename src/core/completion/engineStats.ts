import { Timings } from '../llama/client';

// What the engine did, for the benchmark, the tests and "Strata: Show Completion Status":
// counters per outcome, the server's token counts, and samples of main-thread time and latency.

export interface EngineStats {
  /** /infill completions sent (warm-ups and prefetches counted apart). */
  requests: number;
  /** Of those, aborted because the user moved on. */
  aborted: number;
  /** Of those, answered by the server (whatever post-processing then kept). */
  answered: number;
  failed: number;
  warmUps: number;
  prefetches: number;
  servedFromCache: number;
  typedThrough: number;
  joined: number;
  /** Sums of the server's timings over completed requests (warm-ups and prefetches included). */
  promptTokens: number;
  cachedTokens: number;
  predictedTokens: number;
  /** Requests in flight now, and the most there ever were at once. */
  inFlight: number;
  maxInFlight: number;
}

export function newEngineStats(): EngineStats {
  return {
    requests: 0,
    aborted: 0,
    answered: 0,
    failed: 0,
    warmUps: 0,
    prefetches: 0,
    servedFromCache: 0,
    typedThrough: 0,
    joined: 0,
    promptTokens: 0,
    cachedTokens: 0,
    predictedTokens: 0,
    inFlight: 0,
    maxInFlight: 0,
  };
}

export function addTimings(stats: EngineStats, t: Timings | undefined): void {
  stats.promptTokens += t?.prompt_n ?? 0;
  stats.cachedTokens += t?.cache_n ?? 0;
  stats.predictedTokens += t?.predicted_n ?? 0;
}

/** Keeps the last 2,000 values. */
export function pushSample(samples: number[], v: number): void {
  samples.push(v);
  if (samples.length > 2000) samples.splice(0, samples.length - 2000);
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
