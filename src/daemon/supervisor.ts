import { EventEmitter } from 'events';
import * as path from 'path';
import { ProgressEvent, samePlan, ServerEndpoint, ServerPhase, ServerPlan, ServerStatus } from '../core/protocol';
import { Backoff, BackoffOptions } from '../core/daemonClient/backoff';
import { ConnectionFile } from './connectionFile';
import { classifyExit, crashLoopFailure, describeExit, exitFailure, fail, lastLines, preflight, spawnFailure, SupervisorError } from './failures';
import { launchLlamaServer, LaunchOptions } from './launchLlamaServer';
import { LoadProgress } from './loadProgress';
import { ExitInfo, LlamaProcess } from './llamaProcess';
import { LogRing } from './logRing';
import { pickFreePort } from './ports';
import { ReadyWaiters } from './readyWaiters';
import { fetchMetrics, healthStatus, watchForHang, watchForIdle, WatchScope } from './readyWatch';

// Runs at most one llama-server and keeps it running: start per plan, readiness, progress,
// crash restarts with backoff, crash-loop stop, idle unload. Every asynchronous continuation
// carries the generation it was started for; a load, switch or unload bumps the generation,
// so a late event from a superseded process can never change the current state.
// How a process is started is launchLlamaServer.ts; server.json is connectionFile.ts; the
// /health and /metrics polls are readyWatch.ts.

export interface SupervisorOptions extends LaunchOptions {
  /** server.json for readers that do not speak the socket protocol. */
  connectionFile: string;
  log: (msg: string) => void;
  restart: BackoffOptions;
  /** Consecutive crashes that count as a crash loop. */
  maxCrashes: number;
  /** Ready this long and the crash count starts again from zero. */
  stableMs: number;
  stopGraceMs: number;
  /** How often to read /metrics to tell whether the server is in use (idle unload). */
  activityPollMs: number;
  /** A ready server that misses this many /health checks in a row (each timeoutMs, every
   *  intervalMs) is hung: it is killed and restarted like a crash. failures 0: never. */
  hangCheck: { intervalMs: number; timeoutMs: number; failures: number };
  /** /health polling while loading (the log also triggers checks). */
  healthPollMs: number;
  defaultReadyTimeoutMs: number;
}

export interface SupervisorEvents {
  status: [ServerStatus];
  progress: [ProgressEvent];
  line: [string];
}

const ACTIVE: ReadonlySet<ServerPhase> = new Set<ServerPhase>(['loading', 'ready', 'restarting']);

export class ServerSupervisor extends EventEmitter<SupervisorEvents> {
  readonly serverLog = new LogRing(2000);
  private st: ServerStatus = { phase: 'stopped', since: Date.now(), crashes: 0, stoppedReason: 'initial' };
  private plan?: ServerPlan;
  private proc?: LlamaProcess;
  private endpoint?: ServerEndpoint;
  private gen = 0;
  private readonly waiters = new ReadyWaiters();
  private readonly connectionFile: ConnectionFile;
  private readonly backoff: Backoff;
  private portRetries = 0;
  private closed = false;
  private lastProgressEmit = 0;
  private healthInFlight = false;
  private timers: {
    restart?: NodeJS.Timeout;
    health?: NodeJS.Timeout;
    ready?: NodeJS.Timeout;
    stable?: NodeJS.Timeout;
    activity?: NodeJS.Timeout;
    hang?: NodeJS.Timeout;
  } = {};

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.backoff = new Backoff(opts.restart);
    this.connectionFile = new ConnectionFile(opts.connectionFile, opts.log);
  }

  status(): ServerStatus {
    return structuredClone(this.st);
  }

  get currentPlan(): ServerPlan | undefined {
    return this.plan;
  }

  /** Resolves when the plan's server is ready; see Methods.load for the sharing rules. */
  async load(plan: ServerPlan, replace = false): Promise<ServerStatus> {
    if (this.closed) throw fail('shutting-down', 'The Strata sidecar is shutting down; try again in a moment.');
    if (this.plan && ACTIVE.has(this.st.phase)) {
      if (samePlan(plan, this.plan)) {
        // Another window asks for what runs already: share it. Settings that do not need a
        // restart follow the latest request.
        this.plan = { ...this.plan, label: plan.label ?? this.plan.label, idleUnloadMs: plan.idleUnloadMs ?? this.plan.idleUnloadMs };
        if (this.st.phase === 'ready') {
          this.restartActivityMonitor();
          return this.status();
        }
        return this.waiters.wait();
      }
      if (!replace) {
        throw fail('busy', `${this.st.label ?? 'Another model'} is loaded for another window: use "Switch Model" to replace it.`);
      }
    }
    return this.startPlan(plan);
  }

  async unload(reason: 'requested' | 'idle' | 'shutdown' = 'requested'): Promise<ServerStatus> {
    const running = this.proc !== undefined && !this.proc.hasExited;
    const { gen, stopped } = this.detach(reason);
    if (running) this.setPhase('stopping', { endpoint: undefined });
    await stopped;
    if (gen === this.gen) {
      this.setPhase('stopped', { stoppedReason: reason, error: undefined, endpoint: undefined, pid: undefined, progress: undefined, stage: undefined });
    }
    return this.status();
  }

  async restart(): Promise<ServerStatus> {
    if (!this.plan) throw fail('bad-request', 'Nothing has been loaded yet, so there is nothing to restart: load a model first.');
    return this.startPlan(this.plan);
  }

  /** No more loads; stops the server. */
  async close(): Promise<void> {
    this.closed = true;
    await this.unload('shutdown');
  }

  /** Last resort in the daemon's dying moments: synchronous. */
  killNow(): void {
    const p = this.proc;
    this.proc = undefined;
    p?.killNow();
    if (p?.pid !== undefined) this.connectionFile.removeIfFor(p.pid);
  }

  async metrics(): Promise<Record<string, number>> {
    const ep = this.endpoint;
    if (!ep || this.st.phase !== 'ready') return {};
    return fetchMetrics(ep);
  }

  get serverPid(): number | undefined {
    return this.proc?.pid;
  }

  // ---- internals ----

  private async startPlan(plan: ServerPlan): Promise<ServerStatus> {
    if (this.closed) throw fail('shutting-down', 'The Strata sidecar is shutting down; try again in a moment.');
    // The new plan and 'loading' are visible at once, before the old process has stopped, so
    // that a second window asking for the same plan in the meantime joins this load.
    const { gen, stopped } = this.detach('requested');
    this.plan = plan;
    this.backoff.reset();
    this.portRetries = 0;
    this.setPhase('loading', {
      plan,
      label: plan.label ?? path.basename(plan.modelPath),
      crashes: 0,
      error: undefined,
      lastExit: undefined,
      stoppedReason: undefined,
      endpoint: undefined,
      pid: undefined,
      progress: 0,
      stage: 'starting',
    });
    const ready = this.waiters.wait();
    await stopped;
    // Superseded meanwhile: whoever did it has already settled our waiters.
    if (gen === this.gen) void this.attempt(gen);
    return ready;
  }

  /**
   * Invalidates everything in flight at once (synchronously) and stops the process. Returns the
   * new generation and a promise that settles when the old process is gone.
   */
  private detach(reason: 'requested' | 'idle' | 'shutdown'): { gen: number; stopped: Promise<void> } {
    const gen = ++this.gen;
    this.clearTimers();
    this.waiters.settle(
      fail(
        'cancelled',
        reason === 'shutdown' ? 'The Strata sidecar is shutting down.' : 'Loading was cancelled: the server was stopped or another model was requested.',
      ),
    );
    const proc = this.proc;
    this.proc = undefined;
    this.endpoint = undefined;
    const stopped = (async () => {
      if (proc && !proc.hasExited) {
        const info = await proc.stop(this.opts.stopGraceMs);
        this.opts.log(`llama-server pid ${proc.pid} stopped (${reason}; ${describeExit(info.code, info.signal)})`);
      }
      if (proc?.pid !== undefined) this.connectionFile.removeIfFor(proc.pid);
    })();
    return { gen, stopped };
  }

  private async attempt(gen: number): Promise<void> {
    if (gen !== this.gen || this.closed || !this.plan) return;
    const plan = this.plan;
    try {
      await preflight(plan);
    } catch (e) {
      this.failWith(gen, e);
      return;
    }
    const port = plan.port ?? (await pickFreePort());
    if (gen !== this.gen) return;
    const { proc, endpoint } = launchLlamaServer(plan, port, this.opts, this.serverLog);
    this.proc = proc;
    this.setPhase('loading', { pid: proc.pid, progress: 0, stage: 'starting', endpoint: undefined });
    this.opts.log(
      `started llama-server pid ${proc.pid} on port ${port} for ${path.basename(plan.modelPath)}${this.opts.guard ? ` (guard: ${this.opts.guard.name})` : ''}`,
    );
    proc.on('line', (l) => this.emit('line', l));
    proc.on('progress', (p) => this.onProgress(gen, p));
    proc.on('readyHint', () => void this.checkHealth(gen, proc, endpoint));
    this.timers.health = setInterval(() => void this.checkHealth(gen, proc, endpoint), this.opts.healthPollMs);
    const readyTimeout = plan.readyTimeoutMs ?? this.opts.defaultReadyTimeoutMs;
    this.timers.ready = setTimeout(() => {
      if (gen !== this.gen || this.proc !== proc || this.st.phase !== 'loading') return;
      this.failWith(
        gen,
        fail(
          'ready-timeout',
          `llama-server did not become ready within ${Math.round(readyTimeout / 1000)} s: the model may be too large for this machine's memory or disk speed; see the server log.`,
          lastLines(proc.tail(40)),
        ),
      );
    }, readyTimeout);
    void proc.exited.then((info) => this.onExit(gen, proc, info, plan));
  }

  private async checkHealth(gen: number, proc: LlamaProcess, endpoint: ServerEndpoint): Promise<void> {
    if (gen !== this.gen || this.proc !== proc || this.st.phase !== 'loading' || this.healthInFlight) return;
    this.healthInFlight = true;
    try {
      const status = await healthStatus(endpoint.url, 2000);
      if (status === 200 && gen === this.gen && this.proc === proc && this.st.phase === 'loading') this.onReady(gen, proc, endpoint);
    } catch {
      /* not listening yet */
    } finally {
      this.healthInFlight = false;
    }
  }

  private onReady(gen: number, proc: LlamaProcess, endpoint: ServerEndpoint): void {
    clearInterval(this.timers.health);
    clearTimeout(this.timers.ready);
    this.endpoint = endpoint;
    this.connectionFile.publish(endpoint);
    this.setPhase('ready', { endpoint, progress: 1, stage: 'ready', error: undefined });
    this.opts.log(`llama-server pid ${proc.pid} ready at ${endpoint.url}`);
    this.waiters.settle(this.status());
    this.timers.stable = setTimeout(() => {
      if (gen !== this.gen || this.proc !== proc) return;
      this.backoff.reset();
      if (this.st.crashes !== 0) this.setPhase('ready', { crashes: 0 });
    }, this.opts.stableMs);
    this.restartActivityMonitor();
    if (this.opts.hangCheck.failures > 0) {
      this.timers.hang = watchForHang(endpoint.url, this.opts.hangCheck, this.scope(gen, proc), (missed) => {
        this.opts.log(`llama-server pid ${proc.pid} missed ${missed} health checks in a row: killing it as hung`);
        proc.killNow();
      });
    }
  }

  /** A watch started now stays in charge while this generation and process are current. */
  private scope(gen: number, proc: LlamaProcess): WatchScope {
    const current = (): boolean => gen === this.gen && this.proc === proc;
    return { current, ready: () => current() && this.st.phase === 'ready' };
  }

  private onProgress(gen: number, p: LoadProgress): void {
    if (gen !== this.gen || this.st.phase !== 'loading') return;
    const stageChanged = p.stage !== this.st.stage;
    this.st.progress = p.fraction;
    this.st.stage = p.stage;
    const now = Date.now();
    if (!stageChanged && now - this.lastProgressEmit < 100) return;
    this.lastProgressEmit = now;
    this.emit('progress', { kind: 'load', fraction: p.fraction, stage: p.stage });
  }

  private onExit(gen: number, proc: LlamaProcess, info: ExitInfo, plan: ServerPlan): void {
    if (proc.pid !== undefined) this.connectionFile.removeIfFor(proc.pid);
    // Stopped on purpose (detach/failWith took it away first): nothing to do.
    if (this.proc !== proc || gen !== this.gen) return;
    this.proc = undefined;
    this.endpoint = undefined;
    this.clearTimers();
    const tail = lastLines(proc.tail(40));
    if (info.spawnError) {
      this.failWith(gen, spawnFailure(plan.binaryPath, info.spawnError));
      return;
    }
    const how = describeExit(info.code, info.signal);
    this.st.lastExit = { code: info.code, signal: info.signal, at: Date.now() };
    this.opts.log(`llama-server pid ${proc.pid} ${how} while ${this.st.phase}`);
    const kind = classifyExit(tail);
    if (kind === 'port-in-use' && plan.port === undefined && this.portRetries++ < 3) {
      // Another program took the port between our probe and llama-server's bind: pick again.
      this.opts.log('its port was taken meanwhile; starting again on another port');
      void this.attempt(gen);
      return;
    }
    if (kind !== 'crash') {
      this.failWith(gen, exitFailure(kind, plan, tail, how));
      return;
    }
    const crashes = this.st.crashes + 1;
    if (crashes >= this.opts.maxCrashes) {
      this.failWith(gen, crashLoopFailure(how, crashes, tail));
      return;
    }
    const delay = this.backoff.next();
    this.setPhase('restarting', { crashes, pid: undefined, endpoint: undefined, progress: undefined, stage: undefined });
    this.opts.log(`restarting llama-server in ${delay} ms (crash ${crashes} of at most ${this.opts.maxCrashes - 1} restarts)`);
    this.timers.restart = setTimeout(() => void this.attempt(gen), delay);
  }

  private failWith(gen: number, e: unknown): void {
    if (gen !== this.gen) return;
    const err = e instanceof SupervisorError ? e : fail('internal', `Internal sidecar error: ${(e as Error)?.message ?? String(e)}`);
    this.clearTimers();
    const proc = this.proc;
    this.proc = undefined;
    this.endpoint = undefined;
    if (proc && !proc.hasExited) void proc.stop(this.opts.stopGraceMs);
    this.setPhase('failed', { error: err.info, endpoint: undefined, pid: undefined, progress: undefined, stage: undefined });
    this.opts.log(`llama-server failed (${err.info.code}): ${err.info.message}`);
    this.waiters.settle(err);
  }

  private restartActivityMonitor(): void {
    clearInterval(this.timers.activity);
    const idleMs = this.plan?.idleUnloadMs ?? 0;
    const proc = this.proc;
    const ep = this.endpoint;
    if (!idleMs || !proc || !ep || this.st.phase !== 'ready') return;
    this.timers.activity = watchForIdle(ep, idleMs, this.opts.activityPollMs, this.scope(this.gen, proc), () => {
      this.opts.log(`no inference for ${Math.round(idleMs / 1000)} s: unloading the model`);
      return this.unload('idle');
    });
  }

  private setPhase(phase: ServerPhase, patch: Partial<ServerStatus>): void {
    const since = phase === this.st.phase ? this.st.since : Date.now();
    this.st = { ...this.st, ...patch, phase, since };
    for (const k of Object.keys(this.st) as (keyof ServerStatus)[]) if (this.st[k] === undefined) delete this.st[k];
    this.emit('status', this.status());
  }

  private clearTimers(): void {
    clearTimeout(this.timers.restart);
    clearInterval(this.timers.health);
    clearTimeout(this.timers.ready);
    clearTimeout(this.timers.stable);
    clearInterval(this.timers.activity);
    clearInterval(this.timers.hang);
    this.timers = {};
  }
}
