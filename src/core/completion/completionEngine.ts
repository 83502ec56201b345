import * as crypto from 'crypto';
import { performance } from 'perf_hooks';
import { InfillRequest, InfillResponse, LlamaClient } from '../llama/client';
import { readServerModel } from '../llama/serverModel';
import { LruCache, TypeThroughCache } from './completionCache';
import { classifyError, CompletionStatus } from './completionStatus';
import { CompletionDocument, Cursor } from './document';
import { DEFAULT_EXTRA_OPTIONS, ExtraContext, ExtraContextOptions } from './extraContext';
import { buildFimContext, DEFAULT_FIM_OPTIONS, FimContext, FimContextOptions } from './fimContext';
import { postProcessCompletion } from './postProcess';

// Asks llama-server for fill-in-the-middle completions at the cursor, and does all it can not to:
// typed-through suggestions and repeated contexts are answered from memory, a request for the
// context already in flight joins it, a newer context aborts the older request at once (the
// server slot frees), and the prompt is built so that the server's KV cache covers nearly all of
// it. Every reuse feature can be switched off (the benchmark's baseline).

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
  serverCache: true, clientCache: true, typeThrough: true, stableWindow: true, stableChunks: true, warmUp: true, prefetch: true, joinInFlight: true, adaptiveDebounce: true,
});

export const REUSE_NONE: ReuseFeatures = Object.freeze({
  serverCache: false, clientCache: false, typeThrough: false, stableWindow: false, stableChunks: false, warmUp: false, prefetch: false, joinInFlight: false, adaptiveDebounce: false,
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

/**
 * Wall time, the default clock of the engine's CPU samples: they time its synchronous sections,
 * and their wall time is cheap, portable, and the time the extension host's thread is blocked.
 * The benchmark passes a thread-CPU clock instead (on a busy machine a 0.1 ms section can take
 * 4 ms of wall time while the thread waits for a core).
 */
export function wallClockMs(): number {
  return performance.now();
}

/** Smallest run of cached tokens llama-server may shift into place (llama.vscode: 256). */
const CACHE_REUSE_MIN = 256;
/** llama-server's default n_batch; /infill reserves it for prefix + suffix. Not in /props. */
const ASSUMED_N_BATCH = 2048;

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

export interface CompletionRequestOptions {
  signal?: AbortSignal;
  /** Main-thread time the caller's adapters spent on this completion, added to its CPU sample. */
  adapterCpuMs?: number;
  /** Runs when memory had no answer, before asking the server (the debounce); false: give up. */
  beforeRequest?: () => Promise<boolean>;
}

/** One completion attempt's accounting: CPU so far, and the context built for the memory lookup. */
interface Attempt {
  ms: number;
  built?: { version: number; uri: string; line: number; character: number; ctx: FimContext; key: string };
}

interface InFlight {
  key: string;
  controller: AbortController;
  promise: Promise<CompletionResult | undefined>;
  waiters: number;
  kind: 'completion' | 'warm-up' | 'prefetch';
}

interface ModelInfo {
  client: LlamaClient;
  checked: boolean;
  checking?: Promise<void>;
  nCtx?: number;
  modelPath?: string;
  fim?: boolean;
}

export class CompletionEngine {
  readonly extra: ExtraContext;
  readonly status: CompletionStatus;
  readonly stats: EngineStats = {
    requests: 0, aborted: 0, answered: 0, failed: 0, warmUps: 0, prefetches: 0, servedFromCache: 0, typedThrough: 0, joined: 0,
    promptTokens: 0, cachedTokens: 0, predictedTokens: 0, inFlight: 0, maxInFlight: 0,
  };
  /** CPU milliseconds per completion on the extension's thread (context, hashing, request, post-processing); last 2,000. */
  readonly cpuSamples: number[] = [];
  /** Milliseconds from sending to the answer, per completed server completion; last 2,000. */
  readonly latencySamples: number[] = [];
  private readonly answers = new LruCache<string>(256);
  private readonly typeThrough = new TypeThroughCache();
  private inFlight?: InFlight;
  private model?: ModelInfo;
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
    this.extra = new ExtraContext({ ...settings().extra, stableOrder: settings().reuse.stableChunks });
  }

  private readonly log: (level: 'debug' | 'info' | 'warn', msg: string) => void;
  private readonly cpuClock: () => number;
  private readonly now: () => number;
  private readonly keyTimes: number[] = [];

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
    this.keyTimes.push(this.now());
    if (this.keyTimes.length > 9) this.keyTimes.shift();
    const acc: Attempt = { ms: opts.adapterCpuMs ?? 0 };
    const hit = this.fromMemory(doc, cursor, acc);
    if (hit) {
      this.sample(acc.ms);
      return hit;
    }
    // The debounce holds back new requests; joining the one in flight for this very context (the
    // prefetch an accept started) sends nothing, so it need not wait: the answer shows when it lands.
    if (opts.beforeRequest && !this.inFlightFor(acc) && !(await opts.beforeRequest())) return undefined;
    return this.request(doc, cursor, 'completion', opts.signal, acc);
  }

  /** Whether the request in flight answers the context memory was just asked about (request() will join it). */
  private inFlightFor(acc: Attempt): boolean {
    const f = this.inFlight;
    return !!(f && acc.built && f.key === acc.built.key && f.kind !== 'warm-up' && !f.controller.signal.aborted && this.settings().reuse.joinInFlight);
  }

  /**
   * How long to wait after this keystroke before asking the server: `base` (the setting), or up
   * to 250 ms more while the user types faster than that (1.5 × their median recent gap).
   */
  debounceMs(base: number): number {
    if (!this.settings().reuse.adaptiveDebounce || this.keyTimes.length < 5) return base;
    const gaps: number[] = [];
    for (let i = 1; i < this.keyTimes.length; i++) {
      const g = this.keyTimes[i] - this.keyTimes[i - 1];
      if (g < 1000) gaps.push(g);
    }
    if (gaps.length < 4) return base;
    gaps.sort((a, b) => a - b);
    const median = gaps[gaps.length >> 1];
    return Math.round(Math.min(base + 250, Math.max(base, 1.5 * median)));
  }

  /** Typed-through rest of a shown suggestion, or the answer remembered for this exact context. */
  private fromMemory(doc: CompletionDocument, cursor: Cursor, acc: Attempt): CompletionResult | undefined {
    const t0 = this.cpuClock();
    const s = this.settings();
    try {
      if (s.reuse.typeThrough) {
        const hit = this.typeThrough.lookup(doc, cursor);
        if (hit) {
          this.stats.typedThrough++;
          return { text: hit.rest, fromCache: true, source: 'typed-through', latencyMs: 0 };
        }
      }
      if (s.reuse.clientCache) {
        const built = buildFimContext(doc, cursor, { ...s.fim, stableWindow: s.reuse.stableWindow });
        if (!built.ok) return undefined;
        const key = contextKey(built.ctx, s);
        // Kept for the request that may follow the debounce, if the document has not changed.
        acc.built = { version: doc.version, uri: doc.uri, line: cursor.line, character: cursor.character, ctx: built.ctx, key };
        const text = this.answers.get(key);
        if (text !== undefined) {
          this.stats.servedFromCache++;
          if (text === '') return undefined;
          this.rememberShown(doc, cursor, built.ctx, text);
          return { text, fromCache: true, source: 'cache', latencyMs: 0 };
        }
      }
      return undefined;
    } finally {
      acc.ms += this.cpuClock() - t0;
    }
  }

  /** The user accepted a suggestion: ask for the next one now, so it is ready when they look. */
  accepted(doc: CompletionDocument, cursor: Cursor): void {
    this.typeThrough.clear();
    if (!this.settings().reuse.prefetch) return;
    void this.request(doc, cursor, 'prefetch', undefined, { ms: 0 });
  }

  /**
   * Idle time: moves a queued extra-context chunk into the ring and, when the chunk set changed,
   * evaluates the new prompt into the server's KV cache (n_predict 0) so the next keystroke's
   * completion finds it there. Returns whether a warm-up request was made.
   */
  async idle(doc: CompletionDocument | undefined, cursor: Cursor | undefined, signal?: AbortSignal): Promise<boolean> {
    const s = this.settings();
    if (s.reuse.stableChunks) this.extra.update();
    if (!s.reuse.warmUp || !doc || !cursor || this.inFlight) return false;
    if (this.extra.generation === this.warmedGeneration) return false;
    if (!this.status.mayRequest() || this.status.snapshot.state === 'no-fim') return false;
    await this.request(doc, cursor, 'warm-up', signal, { ms: 0 });
    return true;
  }

  /** Drops every remembered answer (settings or model changed). */
  clearCaches(): void {
    this.answers.clear();
    this.typeThrough.clear();
  }

  /** Aborts the request in flight, if any (the user typed, the editor closed). */
  cancel(): void {
    this.inFlight?.controller.abort();
  }

  private async request(doc: CompletionDocument, cursor: Cursor, kind: InFlight['kind'], signal: AbortSignal | undefined, acc: Attempt): Promise<CompletionResult | undefined> {
    const t0 = performance.now();
    const s = this.settings();
    // While backing off after a failure, not even the connection file is read.
    if (!this.status.mayRequest()) return undefined;
    const client = this.safeClient();
    if (!client) return undefined;
    await this.checkModel(client, s);
    // Not checked: the probe failed and set the status (and its back-off).
    if (!this.model?.checked || this.model.fim === false) return undefined;
    if (signal?.aborted) return undefined;

    const t1 = this.cpuClock();
    let cpu = acc.ms;
    const b = acc.built;
    let ctx: FimContext;
    let key: string;
    if (b && b.version === doc.version && b.uri === doc.uri && b.line === cursor.line && b.character === cursor.character) {
      ctx = b.ctx;
      key = b.key;
    } else {
      const built = buildFimContext(doc, cursor, { ...s.fim, stableWindow: s.reuse.stableWindow });
      if (!built.ok) {
        this.status.setSkipped(built.reason);
        this.sample(cpu + this.cpuClock() - t1);
        return undefined;
      }
      ctx = built.ctx;
      key = contextKey(ctx, s);
    }
    this.status.setSkipped(undefined);
    if (s.reuse.clientCache && kind !== 'warm-up') {
      const text = this.answers.get(key);
      if (text !== undefined) {
        this.stats.servedFromCache++;
        this.sample(cpu + this.cpuClock() - t1);
        if (text === '') return undefined;
        this.rememberShown(doc, cursor, ctx, text);
        return { text, fromCache: true, source: 'cache', latencyMs: 0 };
      }
    }
    // One request at a time: the same context joins it, another one replaces it. A warm-up only
    // fills the server's cache in idle time: it never replaces a request that someone waits for
    // (one that started while both waited for the model check, or the prefetch of an accept).
    const current = this.inFlight;
    if (kind === 'warm-up' && current && !current.controller.signal.aborted) return undefined;
    if (current && current.key === key && kind !== 'warm-up' && s.reuse.joinInFlight && !current.controller.signal.aborted && current.kind !== 'warm-up') {
      current.waiters++;
      this.stats.joined++;
      this.sample(cpu + this.cpuClock() - t1);
      const r = await this.awaitWithSignal(current, signal);
      return r && { ...r, fromCache: true, source: 'joined', latencyMs: performance.now() - t0 };
    }
    current?.controller.abort();

    const extraBudget = this.extraBudget(s);
    const req: InfillRequest = {
      input_prefix: ctx.inputPrefix,
      input_suffix: ctx.inputSuffix,
      input_extra: extraBudget > 0 ? this.extra.chunks(extraBudget) : [],
      prompt: ctx.prompt,
      n_predict: kind === 'warm-up' ? 0 : s.maxTokens,
      n_indent: ctx.multiLine ? ctx.indent : undefined,
      t_max_prompt_ms: 500,
      t_max_predict_ms: s.maxPredictMs,
      ...(s.reuse.serverCache ? { cache_prompt: true, n_cache_reuse: CACHE_REUSE_MIN } : {}),
      // Code wants the likeliest tokens: top-k/top-p, optionally the infill sampler, then
      // temperature 0 (argmax: repeatable, so a remembered answer is the answer).
      samplers: s.infillSampler ? ['top_k', 'top_p', 'infill', 'temperature'] : ['top_k', 'top_p', 'temperature'],
      top_k: 40,
      top_p: 0.99,
      temperature: 0,
      // 'stop' marks the final event of the stream.
      response_fields: ['content', 'stop', 'timings', 'tokens_cached', 'truncated', 'stop_type'],
    };
    if (req.n_indent === undefined) delete req.n_indent;
    // One line wanted: the server stops at the line break instead of generating maxTokens.
    if (!ctx.multiLine && kind !== 'warm-up') req.stop = ['\n'];
    const generation = this.extra.generation;
    const controller = new AbortController();
    const timeout = AbortSignal.timeout(s.requestTimeoutMs);
    const requestSignal = AbortSignal.any([controller.signal, timeout]);
    const entry: InFlight = { key, controller, waiters: 1, kind, promise: Promise.resolve(undefined) };
    if (kind === 'completion') this.stats.requests++;
    else if (kind === 'warm-up') this.stats.warmUps++;
    else this.stats.prefetches++;
    this.stats.inFlight++;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
    // Streamed: an abort frees the server slot at the next token, and generation stops as soon as
    // the suggestion is complete (end of its block, or maxLines).
    let seenLines = 1;
    const onText = kind === 'warm-up' ? undefined : (text: string): boolean => {
      const lines = countLines(text);
      if (lines === seenLines) return false;
      seenLines = lines;
      return blockComplete(text, ctx, s.maxLines);
    };
    const meter = { cpuMs: 0, clock: this.cpuClock };
    const call = (async () => {
      try {
        return await client.infillStream(req, requestSignal, onText, meter); // runs synchronously up to the send
      } catch (e) {
        // A kept-alive connection the server closed as we reused it (a race undici does not retry
        // for POST): the server is fine, ask once more.
        if (requestSignal.aborted || !STALE_SOCKET.test(describeError(e))) throw e;
        this.log('debug', `retrying a completion on a fresh connection: ${describeError(e)}`);
        return client.infillStream(req, requestSignal, onText, meter);
      }
    })();
    cpu += this.cpuClock() - t1;
    entry.promise = (async () => {
      let res: InfillResponse;
      try {
        res = await call;
      } catch (e) {
        const c = classifyError(timeout.aborted ? Object.assign(new Error('timeout'), { name: 'TimeoutError' }) : e);
        if (c.kind === 'aborted') {
          if (kind === 'completion') this.stats.aborted++;
          this.sample(cpu + meter.cpuMs);
          return undefined;
        }
        this.stats.failed++;
        if (c.kind === 'no-fim' && this.model) this.model.fim = false;
        this.log('warn', `completion request failed (${c.kind}): ${describeError(e)}`);
        this.status.failed(c.kind, c.message);
        this.sample(cpu + meter.cpuMs);
        return undefined;
      } finally {
        this.stats.inFlight--;
        if (this.inFlight === entry) this.inFlight = undefined;
      }
      const t2 = performance.now();
      const c2 = this.cpuClock();
      const timings = res.timings;
      this.stats.promptTokens += timings?.prompt_n ?? 0;
      this.stats.cachedTokens += timings?.cache_n ?? 0;
      this.stats.predictedTokens += timings?.predicted_n ?? 0;
      const latencyMs = t2 - t0;
      if (kind === 'warm-up') {
        this.warmedGeneration = generation;
        this.status.succeeded();
        return undefined;
      }
      if (kind === 'prefetch') this.sample(0); // keeps samples per completion comparable
      this.warmedGeneration = generation;
      if (kind === 'completion') {
        this.latencySamples.push(latencyMs);
        if (this.latencySamples.length > 2000) this.latencySamples.shift();
        this.stats.answered++;
      }
      const text = postProcessCompletion(res.content, ctx, { maxLines: s.maxLines });
      if (s.reuse.clientCache) this.answers.set(key, text ?? '');
      const result: CompletionResult | undefined = text === undefined ? undefined : {
        text, fromCache: false, source: 'server', latencyMs,
        promptTokens: timings?.prompt_n, cachedTokens: timings?.cache_n, predictedTokens: timings?.predicted_n,
      };
      if (text !== undefined) this.rememberShown(doc, cursor, ctx, text);
      this.status.succeeded({ latencyMs: Math.round(latencyMs), promptTokens: timings?.prompt_n, cachedTokens: timings?.cache_n, source: 'server' });
      this.sample(cpu + meter.cpuMs + this.cpuClock() - c2);
      return result;
    })();
    this.inFlight = entry;
    return this.awaitWithSignal(entry, signal);
  }

  /** Waits for a shared request; the last waiter to give up aborts it. */
  private awaitWithSignal(entry: InFlight, signal?: AbortSignal): Promise<CompletionResult | undefined> {
    if (!signal) return entry.promise;
    if (signal.aborted) {
      if (--entry.waiters <= 0 && entry.kind !== 'prefetch') entry.controller.abort();
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        if (--entry.waiters <= 0 && entry.kind !== 'prefetch') entry.controller.abort();
        resolve(undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.promise.then((r) => {
        signal.removeEventListener('abort', onAbort);
        resolve(signal.aborted ? undefined : r);
      }, () => resolve(undefined));
    });
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

  /** Once per server (client): its context size (/props) and whether the model can fill in the middle. */
  private async checkModel(client: LlamaClient, s: CompletionSettings): Promise<void> {
    if (this.model?.client !== client) {
      this.model = { client, checked: false };
      this.clearCaches();
      this.warmedGeneration = -1;
      this.status.reset();
    }
    const m = this.model;
    if (m.checked) return;
    m.checking ??= (async () => {
      try {
        const limit = Math.min(10_000, s.requestTimeoutMs);
        const model = await readServerModel(client, limit);
        m.nCtx = model.contextSize;
        m.modelPath = model.modelPath;
        // /props does not say whether the vocabulary has FIM tokens; /infill refuses (501) when not.
        await client.infill({ input_prefix: '', input_suffix: '', prompt: '', n_predict: 0, cache_prompt: true, response_fields: ['content'] }, AbortSignal.timeout(limit));
        m.fim = true;
        m.checked = true;
        this.log('info', `completion model ${m.modelPath ?? '?'}: fill-in-the-middle supported, context ${m.nCtx ?? '?'} tokens per slot`);
      } catch (e) {
        const c = classifyError(e);
        if (c.kind === 'no-fim') {
          m.fim = false;
          m.checked = true;
          this.log('warn', `completion model ${m.modelPath ?? '?'}: ${c.message}`);
        }
        if (c.kind !== 'aborted') this.status.failed(c.kind, c.message);
      } finally {
        m.checking = undefined;
      }
    })();
    await m.checking;
  }

  /** Tokens of extra context the server keeps: its slot context minus what /infill reserves. */
  private extraBudget(s: CompletionSettings): number {
    const nCtx = this.model?.nCtx;
    if (!nCtx) return 0;
    return Math.max(0, Math.min(s.extraTokens, nCtx - ASSUMED_N_BATCH - 2 * s.maxTokens - 16));
  }

  private rememberShown(doc: CompletionDocument, cursor: Cursor, ctx: FimContext, text: string): void {
    if (!this.settings().reuse.typeThrough) return;
    this.typeThrough.remember({ uri: doc.uri, anchor: { ...cursor }, linePrefix: doc.lineAt(cursor.line).slice(0, cursor.character), lineSuffix: ctx.lineSuffix, text });
  }

  private sample(ms: number): void {
    this.cpuSamples.push(ms);
    if (this.cpuSamples.length > 2000) this.cpuSamples.splice(0, this.cpuSamples.length - 2000);
  }

  /** Whether the model in use was found without FIM support. */
  get fimUnsupported(): boolean {
    return this.model?.fim === false;
  }
}

function countLines(s: string): number {
  let n = 1;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/** Whether the complete lines of a partial answer already make the whole suggestion. */
function blockComplete(text: string, ctx: FimContext, maxLines: number): boolean {
  const complete = text.slice(0, text.lastIndexOf('\n')).replace(/(\n[ \t]*)+$/, '');
  const lines = countLines(complete);
  if (lines >= maxLines) return true;
  const kept = postProcessCompletion(complete, ctx, { maxLines: maxLines + 1 });
  // Post-processing cut some of the complete lines: the block (or the line) has ended.
  return kept !== undefined && countLines(kept) < lines;
}

/** Hash of what decides the answer (extra context left out: it barely changes a completion). */
function contextKey(ctx: FimContext, s: CompletionSettings): string {
  return crypto.createHash('sha1')
    .update(ctx.inputPrefix).update('\u0001').update(ctx.prompt).update('\u0001').update(ctx.inputSuffix)
    .update(`\u0001${s.maxTokens}/${s.maxLines}`)
    .digest('base64');
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

const STALE_SOCKET = /other side closed|ECONNRESET|UND_ERR_SOCKET|socket hang up|EPIPE/;

/** An error's message with its causes (fetch wraps the socket error in `cause`). */
export function describeError(e: unknown): string {
  const parts: string[] = [];
  let x = e as { message?: string; code?: string; cause?: unknown } | undefined;
  for (let i = 0; i < 4 && x; i++) {
    parts.push(`${x.message ?? String(x)}${x.code ? ` (${x.code})` : ''}`);
    x = x.cause as typeof x;
  }
  return parts.join(': ');
}
