import { performance } from 'perf_hooks';
import { InfillResponse, LlamaClient } from '../llama/client';
import { CompletionMemory, contextKey } from './completionMemory';
import { CompletionSettings } from './completionSettings';
import { classifyError, CompletionStatus } from './completionStatus';
import { CompletionDocument, Cursor } from './document';
import { addTimings, EngineStats, newEngineStats, pushSample } from './engineStats';
import { ExtraContext } from './extraContext';
import { buildFimContext, FimContext, FimResult } from './fimContext';
import { buildInfillRequest, describeError, sendInfill } from './infillRequest';
import { InFlight, InFlightSlot, RequestKind } from './inFlight';
import { ModelProbe } from './modelProbe';
import { postProcessCompletion } from './postProcess';
import { TypingPace } from './typingPace';

export { DEFAULT_COMPLETION_SETTINGS, REUSE_ALL, REUSE_NONE } from './completionSettings';
export type { CompletionSettings, ReuseFeatures } from './completionSettings';
export { percentile } from './engineStats';
export type { EngineStats } from './engineStats';
export { describeError } from './infillRequest';

// Asks llama-server for fill-in-the-middle completions at the cursor, and does all it can not to:
// typed-through suggestions and repeated contexts are answered from memory, a request for the
// context already in flight joins it, a newer context aborts the older request at once (the
// server slot frees), and the prompt is built so that the server's KV cache covers nearly all of
// it. Every reuse feature can be switched off (the benchmark's baseline).
//
// Read top to bottom: complete() → fromMemory() → (the caller's debounce) → request() →
// send() → settle(). The parts live beside this file: completionMemory (answers, typed
// through), inFlight (join or abort), modelProbe (/props and FIM support, once per server),
// infillRequest (the request, streaming stop, stale-socket retry), engineStats, typingPace.

/**
 * Wall time, the default clock of the engine's CPU samples: they time its synchronous sections,
 * and their wall time is cheap, portable, and the time the extension host's thread is blocked.
 * The benchmark passes a thread-CPU clock instead (on a busy machine a 0.1 ms section can take
 * 4 ms of wall time while the thread waits for a core).
 */
export function wallClockMs(): number {
  return performance.now();
}

export type CompletionSource = 'server' | 'cache' | 'typed-through' | 'joined';

export interface CompletionResult {
  text: string;
  /** Answered without a new server request (cache, typed through, or joined). */
  fromCache: boolean;
  source: CompletionSource;
  latencyMs: number;
  promptTokens?: number;
  cachedTokens?: number;
  predictedTokens?: number;
}

export interface CompletionRequestOptions {
  signal?: AbortSignal;
  /** Main-thread time the caller's adapters spent on this completion, added to its CPU sample. */
  adapterCpuMs?: number;
  /** Runs when memory had no answer, before asking the server (the debounce); false: give up. */
  beforeRequest?: () => Promise<boolean>;
}

/** The FIM context of one document state at one cursor: built once, kept across the debounce. */
interface Built {
  version: number;
  uri: string;
  line: number;
  character: number;
  fim: FimResult;
  key?: string;
}

/** One completion attempt: its settings, its CPU time so far, and its context. */
interface Attempt {
  s: CompletionSettings;
  ms: number;
  built?: Built;
}

export class CompletionEngine {
  readonly extra: ExtraContext;
  readonly status: CompletionStatus;
  readonly stats: EngineStats = newEngineStats();
  /** CPU milliseconds per completion on the extension's thread (context, hashing, request, post-processing); last 2,000. */
  readonly cpuSamples: number[] = [];
  /** Milliseconds from sending to the answer, per completed server completion; last 2,000. */
  readonly latencySamples: number[] = [];
  private readonly memory = new CompletionMemory();
  private readonly inFlight = new InFlightSlot<CompletionResult>();
  private readonly probe: ModelProbe;
  private readonly pace = new TypingPace();
  private readonly log: (level: 'debug' | 'info' | 'warn', msg: string) => void;
  private readonly cpuClock: () => number;
  private readonly now: () => number;
  private warmedGeneration = -1;

  constructor(
    private readonly client: () => LlamaClient,
    private readonly settings: () => CompletionSettings,
    opts: { now?: () => number; cpuClock?: () => number; log?: (level: 'debug' | 'info' | 'warn', msg: string) => void } = {},
  ) {
    this.cpuClock = opts.cpuClock ?? wallClockMs;
    this.now = opts.now ?? Date.now;
    this.status = new CompletionStatus(opts.now);
    this.log = opts.log ?? (() => undefined);
    this.probe = new ModelProbe(this.status, this.log);
    this.extra = new ExtraContext({ ...settings().extra, stableOrder: settings().reuse.stableChunks });
  }

  /** Applies changed settings to the extra-context ring. */
  reconfigure(): void {
    const s = this.settings();
    this.extra.setOptions({ ...s.extra, stableOrder: s.reuse.stableChunks });
  }

  /**
   * A completion at the cursor: from memory when possible, else (after `beforeRequest`, the
   * caller's debounce, resolves true) from the server. Resolves undefined when there is nothing
   * worth showing, when aborted, and on failure (the status says why; nothing throws).
   */
  async complete(doc: CompletionDocument, cursor: Cursor, opts: CompletionRequestOptions = {}): Promise<CompletionResult | undefined> {
    this.pace.keystroke(this.now());
    const acc: Attempt = { s: this.settings(), ms: opts.adapterCpuMs ?? 0 };
    const hit = this.fromMemory(doc, cursor, acc);
    if (hit) {
      this.sample(acc.ms);
      return hit;
    }
    // The debounce holds back new requests; joining the one in flight for this very context (the
    // prefetch an accept started) sends nothing, so it need not wait: the answer shows when it lands.
    const key = acc.built?.key;
    const joinable = acc.s.reuse.joinInFlight && key !== undefined && !!this.inFlight.joinable(key);
    if (opts.beforeRequest && !joinable && !(await opts.beforeRequest())) return undefined;
    return this.request(doc, cursor, 'completion', opts.signal, acc);
  }

  /** How long to wait after this keystroke before asking the server (see TypingPace). */
  debounceMs(base: number): number {
    return this.settings().reuse.adaptiveDebounce ? this.pace.debounceMs(base) : base;
  }

  /** Typed-through rest of a shown suggestion, or the answer remembered for this exact context. */
  private fromMemory(doc: CompletionDocument, cursor: Cursor, acc: Attempt): CompletionResult | undefined {
    const t0 = this.cpuClock();
    const s = acc.s;
    try {
      if (s.reuse.typeThrough) {
        const rest = this.memory.typedThrough(doc, cursor);
        if (rest !== undefined) {
          this.stats.typedThrough++;
          return { text: rest, fromCache: true, source: 'typed-through', latencyMs: 0 };
        }
      }
      // Without the answer cache, the request builds the context after the debounce, if it comes to that.
      if (!s.reuse.clientCache) return undefined;
      // Built once here, for the memory lookup and for the request that may follow the debounce.
      const b = this.context(doc, cursor, s);
      acc.built = b;
      return b.fim.ok ? this.remembered(doc, cursor, b.fim.ctx, b.key!, s)?.result : undefined;
    } finally {
      acc.ms += this.cpuClock() - t0;
    }
  }

  /** The answer memory holds for this context (counted), with no result when it was nothing to show; undefined when never asked. */
  private remembered(doc: CompletionDocument, cursor: Cursor, ctx: FimContext, key: string, s: CompletionSettings): { result?: CompletionResult } | undefined {
    const text = this.memory.answer(key);
    if (text === undefined) return undefined;
    this.stats.servedFromCache++;
    if (text === '') return {};
    this.rememberShown(doc, cursor, ctx, text, s);
    return { result: { text, fromCache: true, source: 'cache', latencyMs: 0 } };
  }

  private context(doc: CompletionDocument, cursor: Cursor, s: CompletionSettings): Built {
    const fim = buildFimContext(doc, cursor, { ...s.fim, stableWindow: s.reuse.stableWindow });
    return { version: doc.version, uri: doc.uri, line: cursor.line, character: cursor.character, fim, key: fim.ok ? contextKey(fim.ctx, s) : undefined };
  }

  /** The user accepted a suggestion: ask for the next one now, so it is ready when they look. */
  accepted(doc: CompletionDocument, cursor: Cursor): void {
    this.memory.forgetShown();
    const s = this.settings();
    if (!s.reuse.prefetch) return;
    void this.request(doc, cursor, 'prefetch', undefined, { s, ms: 0 });
  }

  /**
   * Idle time: moves a queued extra-context chunk into the ring and, when the chunk set changed,
   * evaluates the new prompt into the server's KV cache (n_predict 0) so the next keystroke's
   * completion finds it there. Returns whether a warm-up request was made.
   */
  async idle(doc: CompletionDocument | undefined, cursor: Cursor | undefined, signal?: AbortSignal): Promise<boolean> {
    const s = this.settings();
    if (s.reuse.stableChunks) this.extra.update();
    if (!s.reuse.warmUp || !doc || !cursor || this.inFlight.current) return false;
    if (this.extra.generation === this.warmedGeneration) return false;
    if (!this.status.mayRequest() || this.status.snapshot.state === 'no-fim') return false;
    await this.request(doc, cursor, 'warm-up', signal, { s, ms: 0 });
    return true;
  }

  /** Drops every remembered answer (settings or model changed). */
  clearCaches(): void {
    this.memory.clear();
  }

  /** Aborts the request in flight, if any (the user typed, the editor closed). */
  cancel(): void {
    this.inFlight.cancel();
  }

  /** Whether the model in use was found without FIM support. */
  get fimUnsupported(): boolean {
    return this.probe.fimUnsupported;
  }

  private async request(
    doc: CompletionDocument,
    cursor: Cursor,
    kind: RequestKind,
    signal: AbortSignal | undefined,
    acc: Attempt,
  ): Promise<CompletionResult | undefined> {
    const t0 = performance.now();
    const s = acc.s;
    // While backing off after a failure, not even the connection file is read.
    if (!this.status.mayRequest()) return undefined;
    const client = this.safeClient();
    if (!client) return undefined;
    await this.probe.check(client, s, () => {
      this.clearCaches();
      this.warmedGeneration = -1;
      this.status.reset();
    });
    // Not usable: the probe failed and set the status (and its back-off), or the model has no FIM.
    if (!this.probe.usable || signal?.aborted) return undefined;

    const t1 = this.cpuClock();
    const cpu = () => acc.ms + this.cpuClock() - t1;
    const kept = acc.built;
    const b =
      kept && kept.version === doc.version && kept.uri === doc.uri && kept.line === cursor.line && kept.character === cursor.character
        ? kept
        : this.context(doc, cursor, s);
    if (!b.fim.ok) {
      this.status.setSkipped(b.fim.reason);
      this.sample(cpu());
      return undefined;
    }
    const ctx = b.fim.ctx;
    const key = b.key!;
    this.status.setSkipped(undefined);
    // Asked again after the debounce: a prefetch may have brought the answer meanwhile.
    if (s.reuse.clientCache && kind !== 'warm-up') {
      const m = this.remembered(doc, cursor, ctx, key, s);
      if (m) {
        this.sample(cpu());
        return m.result;
      }
    }
    // One request at a time: the same context joins it, another one replaces it. A warm-up only
    // fills the server's cache in idle time: it never replaces a request that someone waits for
    // (one that started while both waited for the model check, or the prefetch of an accept).
    if (kind === 'warm-up' && this.inFlight.live()) return undefined;
    const joinable = kind !== 'warm-up' && s.reuse.joinInFlight ? this.inFlight.joinable(key) : undefined;
    if (joinable) {
      this.stats.joined++;
      this.sample(cpu());
      const r = await this.inFlight.join(joinable, signal);
      return r && { ...r, fromCache: true, source: 'joined', latencyMs: performance.now() - t0 };
    }
    this.inFlight.cancel();
    return this.send(client, doc, cursor, kind, s, ctx, key, signal, t0, cpu);
  }

  /** Sends a new request for `ctx` and makes it the one in flight. */
  private send(
    client: LlamaClient,
    doc: CompletionDocument,
    cursor: Cursor,
    kind: RequestKind,
    s: CompletionSettings,
    ctx: FimContext,
    key: string,
    signal: AbortSignal | undefined,
    t0: number,
    cpu: () => number,
  ): Promise<CompletionResult | undefined> {
    const extraBudget = this.probe.extraBudget(s);
    const req = buildInfillRequest(ctx, kind, s, extraBudget > 0 ? this.extra.chunks(extraBudget) : []);
    const generation = this.extra.generation;
    const controller = new AbortController();
    const timeout = AbortSignal.timeout(s.requestTimeoutMs);
    const entry: InFlight<CompletionResult> = { key, controller, waiters: 1, kind, promise: Promise.resolve(undefined) };
    if (kind === 'completion') this.stats.requests++;
    else if (kind === 'warm-up') this.stats.warmUps++;
    else this.stats.prefetches++;
    this.stats.inFlight++;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
    const meter = { cpuMs: 0, clock: this.cpuClock };
    const call = sendInfill(client, req, ctx, s, AbortSignal.any([controller.signal, timeout]), meter, this.log);
    const cpuMs = cpu();
    entry.promise = (async () => {
      let res: InfillResponse;
      try {
        res = await call;
      } catch (e) {
        this.failed(kind, timeout.aborted ? Object.assign(new Error('timeout'), { name: 'TimeoutError' }) : e, e);
        this.sample(cpuMs + meter.cpuMs);
        return undefined;
      } finally {
        this.stats.inFlight--;
        if (this.inFlight.current === entry) this.inFlight.current = undefined;
      }
      const c2 = this.cpuClock();
      const r = this.settle(doc, cursor, kind, s, ctx, key, res, performance.now() - t0, generation);
      if (kind !== 'warm-up') this.sample(cpuMs + meter.cpuMs + this.cpuClock() - c2);
      return r;
    })();
    this.inFlight.current = entry;
    return this.inFlight.wait(entry, signal);
  }

  /** A request failed or was aborted: counts it and sets the status. */
  private failed(kind: RequestKind, classified: unknown, e: unknown): void {
    const c = classifyError(classified);
    if (c.kind === 'aborted') {
      if (kind === 'completion') this.stats.aborted++;
      return;
    }
    this.stats.failed++;
    if (c.kind === 'no-fim') this.probe.noFim();
    this.log('warn', `completion request failed (${c.kind}): ${describeError(e)}`);
    this.status.failed(c.kind, c.message);
  }

  /** The server answered: records it, post-processes the text and remembers the answer. */
  private settle(
    doc: CompletionDocument,
    cursor: Cursor,
    kind: RequestKind,
    s: CompletionSettings,
    ctx: FimContext,
    key: string,
    res: InfillResponse,
    latencyMs: number,
    generation: number,
  ): CompletionResult | undefined {
    const timings = res.timings;
    addTimings(this.stats, timings);
    this.warmedGeneration = generation;
    if (kind === 'warm-up') {
      this.status.succeeded();
      return undefined;
    }
    if (kind === 'prefetch') this.sample(0); // keeps samples per completion comparable
    if (kind === 'completion') {
      pushSample(this.latencySamples, latencyMs);
      this.stats.answered++;
    }
    const text = postProcessCompletion(res.content, ctx, { maxLines: s.maxLines });
    if (s.reuse.clientCache) this.memory.rememberAnswer(key, text);
    if (text !== undefined) this.rememberShown(doc, cursor, ctx, text, s);
    this.status.succeeded({ latencyMs: Math.round(latencyMs), promptTokens: timings?.prompt_n, cachedTokens: timings?.cache_n, source: 'server' });
    return text === undefined
      ? undefined
      : {
          text,
          fromCache: false,
          source: 'server',
          latencyMs,
          promptTokens: timings?.prompt_n,
          cachedTokens: timings?.cache_n,
          predictedTokens: timings?.predicted_n,
        };
  }

  private safeClient(): LlamaClient | undefined {
    try {
      return this.client();
    } catch (e) {
      const c = classifyError(e);
      if (c.kind !== 'aborted') this.status.failed(c.kind, c.message);
      return undefined;
    }
  }

  private rememberShown(doc: CompletionDocument, cursor: Cursor, ctx: FimContext, text: string, s: CompletionSettings): void {
    if (s.reuse.typeThrough) this.memory.shown(doc, cursor, ctx, text);
  }

  private sample(ms: number): void {
    pushSample(this.cpuSamples, ms);
  }
}
