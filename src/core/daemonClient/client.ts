import { EventEmitter } from 'events';
import WebSocket from 'ws';
import {
  ClusterEvent,
  CloseCode,
  decodeDaemonFrame,
  encodeFrame,
  LogEvent,
  MAX_FRAME_BYTES,
  Method,
  MetricsResult,
  ParamsOf,
  ProgressEvent,
  PROTOCOL_VERSION,
  ResultOf,
  samePlan,
  ServerEndpoint,
  ServerPlan,
  ServerStatus,
  SidecarStatus,
} from '../protocol';
import { Backoff, BackoffOptions } from './backoff';
import { SidecarError } from './errors';
import { SidecarLock } from './lockFile';

// A window's connection to the sidecar daemon. No `vscode` import: the extension wraps it in a
// status bar item and commands; tests and scripts use it as is.
//
// It keeps one WebSocket, matches responses to requests by id, re-emits the daemon's events,
// and when the connection drops it reconnects with backoff, starting a new daemon if the old
// one is gone (through `locate`). If the daemon died (not a deliberate shutdown) and the new
// one has nothing loaded, the model this window last saw in use is loaded again.

export interface SidecarClientOptions {
  /** Finds the running daemon, starting one if need be. Called for every (re)connection. */
  locate: () => Promise<SidecarLock>;
  clientName?: string;
  /** false: no reconnection (the client emits 'closed' when the connection drops). */
  reconnect?: BackoffOptions | false;
  /** Reload the last model after the daemon died and a new one started. Default true. */
  restorePlan?: boolean;
  /** How long a connection may take to be welcomed. */
  helloTimeoutMs?: number;
  /** Default for requests other than load/switch/restart, which wait as long as loading takes. */
  requestTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface SidecarClientEvents {
  /** Every change of daemon or server state. */
  status: [SidecarStatus];
  progress: [ProgressEvent];
  /** Only after subscribeLogs(true). */
  log: [LogEvent];
  /** Peer down, re-planned, peer back, placement started or failed. */
  cluster: [ClusterEvent];
  /** The first connection and every reconnection, with the daemon's status then. */
  connected: [SidecarStatus];
  /** The connection dropped; a reconnection follows unless closed or disabled. */
  disconnected: [SidecarError];
  /** Something went wrong in the background (a reconnection attempt, a plan restore). */
  warning: [Error];
  /** close() was called, or the connection dropped and reconnection is off. */
  closed: [];
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

const LONG_METHODS: ReadonlySet<Method> = new Set<Method>(['load', 'switch', 'restart']);

export class SidecarClient extends EventEmitter<SidecarClientEvents> {
  private ws?: WebSocket;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private lastStatus?: SidecarStatus;
  private closedByUser = false;
  private reconnecting = false;
  private readonly backoff?: Backoff;
  private wantedPlan?: ServerPlan;
  private logsWanted = false;
  private daemonIdentity?: string;

  constructor(private readonly opts: SidecarClientOptions) {
    super();
    if (opts.reconnect !== false) this.backoff = new Backoff(opts.reconnect ?? { initialMs: 200, maxMs: 5000, factor: 2, jitter: 0.3 });
  }

  /** The last status the daemon reported (welcome, event or response). */
  get lastKnownStatus(): SidecarStatus | undefined {
    return this.lastStatus;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** First connection: retries until timeoutMs (a daemon may be starting or restarting). */
  async open(timeoutMs = 30_000): Promise<SidecarStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (let attempt = 1; ; attempt++) {
      try {
        const lock = await this.opts.locate();
        const status = await this.connectOnce(lock);
        this.afterConnect(status, false);
        return status;
      } catch (e) {
        last = e;
        if (e instanceof SidecarError && (e.code === 'incompatible' || e.code === 'start-failed')) throw e;
        if (Date.now() > deadline) break;
        this.opts.log?.(`sidecar connection attempt ${attempt} failed: ${(e as Error).message}`);
        await sleep(Math.min(1000, 100 * attempt));
      }
    }
    throw last instanceof SidecarError
      ? last
      : new SidecarError('unreachable', `Could not connect to the Strata sidecar: ${(last as Error)?.message ?? last}; see its log.`);
  }

  // ---- requests ----

  async request<M extends Method>(method: M, params: ParamsOf<M>, opts: { timeoutMs?: number } = {}): Promise<ResultOf<M>> {
    const ws = await this.whenConnected(10_000);
    const id = this.nextId++;
    const timeoutMs = opts.timeoutMs ?? (LONG_METHODS.has(method) ? 0 : (this.opts.requestTimeoutMs ?? 30_000));
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new SidecarError('timeout', `The Strata sidecar did not answer "${method}" within ${Math.round(timeoutMs / 1000)} s; see its log.`));
        }, timeoutMs);
      }
      this.pending.set(id, p);
      ws.send(encodeFrame({ type: 'req', id, method, params }));
    });
  }

  async status(): Promise<SidecarStatus> {
    const s = await this.request('status', {});
    this.noteStatus(s);
    return s;
  }

  /** Loads the plan (or joins it if it is what runs) and resolves once it serves. */
  async load(plan: ServerPlan, opts: { replace?: boolean } = {}): Promise<ServerStatus> {
    this.wantedPlan = plan;
    return this.request('load', opts.replace ? { plan, replace: true } : { plan });
  }

  /** Replaces whatever runs with this plan. */
  async switchModel(plan: ServerPlan): Promise<ServerStatus> {
    this.wantedPlan = plan;
    return this.request('switch', { plan });
  }

  /**
   * What an inference call needs: the endpoint of a ready server running this plan, loading it
   * first if needed (e.g. after an idle unload). Cheap when it is ready already.
   */
  async ensureReady(plan: ServerPlan): Promise<ServerEndpoint> {
    const s = this.lastStatus?.server;
    if (s?.phase === 'ready' && s.endpoint && s.plan && samePlan(s.plan, plan)) return s.endpoint;
    const st = await this.load(plan);
    if (!st.endpoint) throw new SidecarError('internal', 'The sidecar reported ready without an endpoint; see its log.');
    return st.endpoint;
  }

  async unload(): Promise<ServerStatus> {
    this.wantedPlan = undefined;
    return this.request('unload', {});
  }

  async restart(): Promise<ServerStatus> {
    return this.request('restart', {});
  }

  async logs(source: 'server' | 'daemon', lines = 200): Promise<{ lines: string[]; file: string }> {
    return this.request('logs', { source, lines });
  }

  async subscribeLogs(on: boolean): Promise<void> {
    this.logsWanted = on;
    await this.request('subscribeLogs', { on });
  }

  async metrics(): Promise<MetricsResult> {
    return this.request('metrics', {});
  }

  /** Stops the daemon (and its llama-server); with whenIdle, only once no other window uses it. */
  async shutdown(opts: { whenIdle?: boolean } = {}): Promise<void> {
    await this.request('shutdown', opts.whenIdle ? { whenIdle: true } : {});
  }

  /** Disconnects for good. The daemon exits on its own once no window is connected for a while. */
  close(): void {
    if (this.closedByUser) return;
    this.closedByUser = true;
    const ws = this.ws;
    this.ws = undefined;
    this.failPending(new SidecarError('disconnected', 'The sidecar connection was closed.'));
    if (ws && ws.readyState !== WebSocket.CLOSED) ws.close(1000);
    this.emit('closed');
  }

  // ---- connection ----

  private connectOnce(lock: SidecarLock): Promise<SidecarStatus> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${lock.port}/`, {
        headers: { authorization: `Bearer ${lock.token}` },
        perMessageDeflate: false,
        handshakeTimeout: this.opts.helloTimeoutMs ?? 5000,
        maxPayload: MAX_FRAME_BYTES,
      });
      let welcomed = false;
      const timer = setTimeout(
        () => {
          ws.terminate();
          reject(new SidecarError('timeout', `The Strata sidecar (pid ${lock.pid}) did not answer in time.`));
        },
        (this.opts.helloTimeoutMs ?? 5000) + 1000,
      );
      const settle = (e?: Error, status?: SidecarStatus) => {
        clearTimeout(timer);
        if (e) reject(e);
        else resolve(status!);
      };
      ws.on('open', () => {
        ws.send(encodeFrame({ type: 'hello', protocolVersion: PROTOCOL_VERSION, client: { name: this.opts.clientName ?? 'strata', pid: process.pid } }));
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        let frame;
        try {
          frame = decodeDaemonFrame(data.toString());
        } catch (e) {
          this.opts.log?.(`ignoring a sidecar frame: ${(e as Error).message}`);
          return;
        }
        if (!welcomed) {
          if (frame.type !== 'welcome') return;
          welcomed = true;
          this.ws = ws;
          settle(undefined, frame.status);
          return;
        }
        if (frame.type === 'res') {
          const p = this.pending.get(frame.id);
          if (!p) return;
          this.pending.delete(frame.id);
          clearTimeout(p.timer);
          if (frame.ok) p.resolve(frame.result);
          else p.reject(SidecarError.fromInfo(frame.error));
        } else if (frame.type === 'event') {
          if (frame.event === 'status') this.noteStatus(frame.data as SidecarStatus);
          else if (frame.event === 'progress') this.emit('progress', frame.data as ProgressEvent);
          else if (frame.event === 'log') this.emit('log', frame.data as LogEvent);
          else if (frame.event === 'cluster') this.emit('cluster', frame.data as ClusterEvent);
        }
      });
      ws.on('error', (e) => {
        if (!welcomed) settle(new SidecarError('unreachable', `Cannot reach the Strata sidecar on port ${lock.port}: ${e.message}.`));
      });
      ws.on('close', (code, reasonBuf) => {
        const reason = reasonBuf.toString();
        if (!welcomed) {
          settle(closeError(code, reason));
          return;
        }
        if (this.ws === ws) this.onDisconnect(code, reason);
      });
    });
  }

  private afterConnect(status: SidecarStatus, restore: boolean): void {
    const identity = `${status.daemon.pid}:${status.daemon.startedAt}`;
    const newDaemon = identity !== this.daemonIdentity;
    this.daemonIdentity = identity;
    const plan = this.wantedPlan;
    this.noteStatus(status, false);
    if (this.logsWanted) this.request('subscribeLogs', { on: true }).catch((e: Error) => this.emit('warning', e));
    this.emit('connected', status);
    if (restore && newDaemon && plan && (this.opts.restorePlan ?? true) && status.server.phase === 'stopped') {
      this.opts.log?.('the sidecar restarted; loading the model again');
      this.load(plan).catch((e: Error) => this.emit('warning', e));
    }
  }

  private noteStatus(s: SidecarStatus, emit = true): void {
    this.lastStatus = s;
    // Follow the shared state: the plan to restore is whatever last ran, whichever window chose it.
    const sv = s.server;
    if ((sv.phase === 'loading' || sv.phase === 'ready' || sv.phase === 'restarting') && sv.plan) this.wantedPlan = sv.plan;
    else if ((sv.phase === 'stopped' && sv.stoppedReason !== 'initial') || sv.phase === 'failed') this.wantedPlan = undefined;
    if (emit) this.emit('status', s);
  }

  private onDisconnect(code: number, reason: string): void {
    this.ws = undefined;
    const err = new SidecarError(
      'disconnected',
      code === CloseCode.ShuttingDown
        ? 'The Strata sidecar shut down.'
        : `The connection to the Strata sidecar was lost (code ${code}${reason ? `: ${reason}` : ''}); reconnecting.`,
    );
    this.failPending(err);
    if (this.closedByUser) return;
    this.emit('disconnected', err);
    if (!this.backoff) {
      this.closedByUser = true;
      this.emit('closed');
      return;
    }
    // A deliberate shutdown is not a crash: reconnect (a window still needs a daemon), but do
    // not reload a model someone chose to stop.
    void this.reconnectLoop(code !== CloseCode.ShuttingDown);
  }

  private async reconnectLoop(restore: boolean): Promise<void> {
    if (this.reconnecting || !this.backoff) return;
    this.reconnecting = true;
    try {
      while (!this.closedByUser) {
        await sleep(this.backoff.next());
        if (this.closedByUser) return;
        try {
          const lock = await this.opts.locate();
          const status = await this.connectOnce(lock);
          if (this.closedByUser) {
            this.ws?.close(1000);
            return;
          }
          this.backoff.reset();
          this.afterConnect(status, restore);
          return;
        } catch (e) {
          this.opts.log?.(`sidecar reconnection failed: ${(e as Error).message}`);
          this.emit('warning', e as Error);
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  private async whenConnected(timeoutMs: number): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return this.ws;
    if (this.closedByUser) throw new SidecarError('disconnected', 'The sidecar connection was closed.');
    if (!this.reconnecting) throw new SidecarError('disconnected', 'Not connected to the Strata sidecar.');
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('connected', on);
        reject(new SidecarError('disconnected', 'The Strata sidecar is restarting and did not come back in time; try again in a moment.'));
      }, timeoutMs);
      const on = () => {
        clearTimeout(t);
        if (this.ws) resolve(this.ws);
        else reject(new SidecarError('disconnected', 'Not connected to the Strata sidecar.'));
      };
      this.once('connected', on);
    });
  }

  private failPending(err: SidecarError): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }
}

function closeError(code: number, reason: string): SidecarError {
  if (code === CloseCode.Unauthorized)
    return new SidecarError('unauthorized', "The Strata sidecar refused this window's token (a stale lock file?); retrying.");
  if (code === CloseCode.IncompatibleProtocol)
    return new SidecarError('incompatible', `The running Strata sidecar speaks ${reason || 'another protocol'}, this window ${PROTOCOL_VERSION}.`);
  if (code === CloseCode.ShuttingDown) return new SidecarError('unreachable', 'The Strata sidecar is shutting down.');
  return new SidecarError('unreachable', `The Strata sidecar closed the connection (code ${code}).`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
