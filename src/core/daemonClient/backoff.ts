// Exponential backoff with jitter, shared by the daemon (restarting a crashed llama-server)
// and the client (reconnecting to a restarted daemon). Jitter keeps several windows from
// reconnecting in lockstep.

export interface BackoffOptions {
  /** First delay. */
  initialMs: number;
  /** Cap on any delay. */
  maxMs: number;
  /** Growth per attempt; default 2. */
  factor?: number;
  /** 0..1: each delay is scaled by a random factor in [1 - jitter, 1]; default 0. */
  jitter?: number;
}

/** Delay before attempt `attempt` (1-based): initial * factor^(attempt-1), capped, jittered. */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const factor = opts.factor ?? 2;
  const n = Math.max(1, Math.floor(attempt));
  // Cap the exponent before Math.pow so a long outage cannot overflow to Infinity.
  const raw = opts.initialMs * Math.pow(factor, Math.min(n - 1, 60));
  const capped = Math.min(opts.maxMs, raw);
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0));
  return Math.round(capped * (1 - jitter * random()));
}

/** Counts attempts; reset() after a success. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay for the next attempt, advancing the count. */
  next(): number {
    this.attempt += 1;
    return backoffDelay(this.attempt, this.opts, this.random);
  }

  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}
