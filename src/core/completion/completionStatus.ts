import { LlamaHttpError, LlamaProtocolError } from '../llama/client';
import { ConnectionFileError } from '../llama/serverConnection';
import { describeServerLoss } from '../daemonClient/errors';

// One state for the completion path, shown in one status-bar item: no pop-up per keystroke.
// Failures also set a back-off, so a server that is down or loading is not asked on every
// keystroke (one cheap retry when the back-off has passed).

export type CompletionState =
  | 'idle' // nothing asked yet
  | 'ready'
  | 'loading' // llama-server answers 503 while it loads the model
  | 'down' // no server, connection refused, connection file missing
  | 'no-fim' // the model has no fill-in-the-middle tokens
  | 'error'; // the server answers with errors or garbage

export interface StatusSnapshot {
  state: CompletionState;
  /** One sentence: what happened and what to do. */
  message: string;
  /** Latency and token counts of the last server completion. */
  last?: { latencyMs: number; promptTokens?: number; cachedTokens?: number; source: string };
  /** Why the current document gets no completions (minified line, binary), if it does not. */
  skipped?: string;
}

export type ErrorKind = 'aborted' | 'down' | 'loading' | 'no-fim' | 'unauthorized' | 'garbage' | 'server-error' | 'timeout';

export function classifyError(e: unknown): { kind: ErrorKind; message: string } {
  const err = e as Error;
  if (err instanceof ConnectionFileError) return { kind: 'down', message: err.message };
  if (err instanceof LlamaProtocolError) return { kind: 'garbage', message: err.message };
  if (err instanceof LlamaHttpError) {
    if (err.status === 503) return { kind: 'loading', message: 'llama-server is loading the model; completions start when it is ready.' };
    if (err.status === 401) return { kind: 'unauthorized', message: err.message };
    if (err.status === 501 || /not supported by this model/i.test(err.body)) {
      return {
        kind: 'no-fim',
        message:
          'The loaded model has no fill-in-the-middle tokens, so inline completions are off: load a coder model with FIM support (Qwen2.5-Coder, DeepSeek-Coder, CodeLlama, StarCoder2, Codestral).',
      };
    }
    return { kind: 'server-error', message: err.message };
  }
  if (err?.name === 'TimeoutError')
    return { kind: 'timeout', message: 'llama-server did not answer a completion in time; it may be overloaded (check the Strata log).' };
  if (err?.name === 'AbortError') return { kind: 'aborted', message: '' };
  const loss = describeServerLoss(e);
  if (loss) return { kind: 'down', message: loss };
  return { kind: 'server-error', message: `Inline completion failed: ${err?.message ?? String(e)}` };
}

const BACKOFF_MS: Record<Exclude<ErrorKind, 'aborted'>, number> = {
  down: 2000,
  loading: 1000,
  'no-fim': 30_000,
  unauthorized: 5000,
  garbage: 5000,
  'server-error': 1000,
  timeout: 1000,
};
const MAX_BACKOFF_MS: Record<Exclude<ErrorKind, 'aborted'>, number> = {
  // A server that comes back (or a connection file that appears) is noticed within seconds.
  down: 5000,
  loading: 2000,
  'no-fim': 30_000,
  unauthorized: 30_000,
  garbage: 30_000,
  'server-error': 10_000,
  timeout: 10_000,
};

export class CompletionStatus {
  private snap: StatusSnapshot = { state: 'idle', message: 'Inline completions: waiting for the first request.' };
  private listeners = new Set<(s: StatusSnapshot) => void>();
  private retryAt = 0;
  private failures = 0;

  constructor(private readonly now: () => number = Date.now) {}

  get snapshot(): StatusSnapshot {
    return this.snap;
  }

  onChange(fn: (s: StatusSnapshot) => void): { dispose(): void } {
    this.listeners.add(fn);
    return { dispose: () => this.listeners.delete(fn) };
  }

  /** false while backing off after a failure: the caller should not ask the server now. */
  mayRequest(): boolean {
    return this.now() >= this.retryAt;
  }

  succeeded(last?: StatusSnapshot['last']): void {
    this.failures = 0;
    this.retryAt = 0;
    this.set({ state: 'ready', message: 'Inline completions are ready.', last: last ?? this.snap.last, skipped: this.snap.skipped });
  }

  failed(kind: Exclude<ErrorKind, 'aborted'>, message: string): void {
    this.failures++;
    const base = BACKOFF_MS[kind];
    this.retryAt = this.now() + Math.min(MAX_BACKOFF_MS[kind], base * 2 ** Math.min(this.failures - 1, 5));
    const state: CompletionState = kind === 'loading' ? 'loading' : kind === 'down' ? 'down' : kind === 'no-fim' ? 'no-fim' : 'error';
    this.set({ state, message, last: this.snap.last, skipped: this.snap.skipped });
  }

  /** The connection changed (server restarted, other model): forget the back-off. */
  reset(): void {
    this.failures = 0;
    this.retryAt = 0;
    if (this.snap.state !== 'ready' && this.snap.state !== 'idle')
      this.set({ state: 'idle', message: 'Inline completions: reconnecting to llama-server.', last: this.snap.last });
  }

  setSkipped(reason: string | undefined): void {
    if (this.snap.skipped === reason) return;
    this.set({ ...this.snap, skipped: reason });
  }

  private set(s: StatusSnapshot): void {
    const changed = s.state !== this.snap.state || s.message !== this.snap.message || s.skipped !== this.snap.skipped || s.last !== this.snap.last;
    this.snap = s;
    if (changed) for (const l of this.listeners) l(s);
  }
}
