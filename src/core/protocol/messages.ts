// The sidecar control protocol: what a window and the daemon say to each other over the
// WebSocket. Everything here is plain data (JSON), so that the extension host, the daemon and
// tests share one definition and a version number tells them whether they can talk at all.
//
// Frozen across versions (an old daemon and a new client must still agree on these, or an old
// daemon could never be asked to make way for a new one):
//   - the lock file fields pid, port, token, protocolVersion;
//   - the `hello` frame (type, protocolVersion, token, retire) and the close codes below.
// Everything else may change when PROTOCOL_VERSION is bumped.

import type { ClusterConfig, ClusterEvent, ClusterStatus, PlacementStatus } from './cluster';

/** Bump on any incompatible change to requests, responses or events. */
export const PROTOCOL_VERSION = 1;

/** WebSocket close codes the daemon uses (4000-4999 is the application range). */
export const CloseCode = Object.freeze({
  /** Missing or wrong token, or no hello in time. Deliberately the same for all three. */
  Unauthorized: 4401,
  /** The client speaks another protocol version; the reason text is "protocol <n>". */
  IncompatibleProtocol: 4426,
  /** A frame that does not parse or does not fit the protocol. */
  ProtocolViolation: 4400,
  /** The daemon is exiting (shutdown request, idle exit, replaced by a newer one). */
  ShuttingDown: 4000,
});

/**
 * What to run. Produced by the planner/installer (they resolve the binary and choose flags);
 * the supervisor adds only what it must own: -m, --host, --port, --api-key-file, --metrics.
 */
export interface ServerPlan {
  /** Absolute path of a llama-server executable. */
  binaryPath: string;
  /** Absolute path of the GGUF model. */
  modelPath: string;
  /** Further llama-server flags, e.g. ["-ngl", "99", "-fa", "on", "-c", "8192"]. */
  args: string[];
  /** Extra environment for llama-server (e.g. HIP_VISIBLE_DEVICES). */
  env?: Record<string, string>;
  /** A fixed port; default: a free loopback port chosen per start. */
  port?: number;
  /** Name to show in the status bar; default: the model file name. */
  label?: string;
  /** Unload after this long without inference; 0 or absent: never. */
  idleUnloadMs?: number;
  /** Give up if not ready after this long; default 10 minutes (a 40 GB model from a slow disk). */
  readyTimeoutMs?: number;
}

export type ServerPhase =
  | 'stopped'
  | 'loading'
  | 'ready'
  /** Crashed; waiting out the backoff before the next start. */
  | 'restarting'
  | 'stopping'
  /** Gave up; `error` says why. A new load clears it. */
  | 'failed';

export type ErrorCode =
  | 'bad-request'
  | 'unknown-method'
  | 'binary-not-found'
  | 'binary-not-executable'
  | 'model-not-found'
  | 'model-load-failed'
  | 'bad-arguments'
  | 'port-in-use'
  | 'crash-loop'
  | 'ready-timeout'
  | 'cancelled'
  | 'busy'
  | 'shutting-down'
  | 'internal';

export interface ErrorInfo {
  code: ErrorCode;
  /** One sentence a user can act on. */
  message: string;
  /** The last lines llama-server printed, where they explain the failure. */
  logTail?: string[];
}

/** How to reach a ready llama-server (the same fields as server.json). */
export interface ServerEndpoint {
  url: string;
  apiKey: string;
  pid: number;
  port: number;
  model: string;
}

export interface ServerStatus {
  phase: ServerPhase;
  /** Epoch ms when this phase began. */
  since: number;
  plan?: ServerPlan;
  label?: string;
  /** Present while phase is 'ready'. */
  endpoint?: ServerEndpoint;
  /** pid of the current llama-server process, also while loading. */
  pid?: number;
  /** 0..1 while loading. */
  progress?: number;
  /** What is loading, e.g. "text_model", "warmup". */
  stage?: string;
  /** Crashes since the last stable run. */
  crashes: number;
  /** Why the last process ended, when it ended on its own. */
  lastExit?: { code: number | null; signal: string | null; at: number };
  /** Present while phase is 'failed', and after an idle unload (code absent, reason 'idle'). */
  error?: ErrorInfo;
  /** Why phase is 'stopped': never loaded, unloaded on request, idle, or daemon shutdown. */
  stoppedReason?: 'initial' | 'requested' | 'idle' | 'shutdown';
}

export interface DaemonInfo {
  pid: number;
  startedAt: number;
  protocolVersion: number;
  /** Extension version that built the daemon. */
  version: string;
  logFile: string;
  serverLogFile: string;
  clients: number;
  /** True once asked to make way for a newer daemon; it exits when its last client leaves. */
  retiring: boolean;
}

export interface SidecarStatus {
  daemon: DaemonInfo;
  server: ServerStatus;
  /** Present once peers are configured: the split in effect and the placed servers windows route to. */
  cluster?: ClusterSummary;
}

export interface ClusterSummary {
  /** The running model is spread over these peers (absent: it runs on this machine alone). */
  split?: { summary: string; peers: string[] };
  placements: PlacementStatus[];
  peers: { up: number; total: number };
}

export interface ProgressEvent {
  /** What is progressing. 'load' today; build and download slot in here later. */
  kind: 'load' | 'build' | 'download';
  /** 0..1; absent where there is no measure. */
  fraction?: number;
  stage?: string;
  message?: string;
}

export interface LogEvent {
  source: 'server' | 'daemon';
  lines: string[];
}

export interface MetricsResult {
  /** llama-server's Prometheus metrics, names without the "llamacpp:" prefix. */
  server: Record<string, number>;
  /** Resident memory of llama-server in bytes, where the OS tells. */
  serverRssBytes?: number;
  daemonRssBytes: number;
  uptimeMs: number;
}

/** Method name -> [params, result]. */
export interface Methods {
  status: [Record<string, never>, SidecarStatus];
  /** Loads a plan and resolves when ready. The same plan again joins the running load. A
   *  different plan while one is loaded fails with 'busy' unless `replace` is set. */
  load: [{ plan: ServerPlan; replace?: boolean }, ServerStatus];
  /** load with replace: stops whatever runs and loads this plan. */
  switch: [{ plan: ServerPlan }, ServerStatus];
  unload: [Record<string, never>, ServerStatus];
  /** Stops and starts the current plan again. */
  restart: [Record<string, never>, ServerStatus];
  logs: [{ source: 'server' | 'daemon'; lines?: number }, { lines: string[]; file: string }];
  /** Log lines as events from now on (on: true) or no more (on: false). */
  subscribeLogs: [{ on: boolean }, Record<string, never>];
  metrics: [Record<string, never>, MetricsResult];
  /** Stops llama-server and the daemon. With whenIdle: only once no other client is connected. */
  shutdown: [{ whenIdle?: boolean }, Record<string, never>];
  /** Peers (with their tokens), mode and placements from the window's settings and SecretStorage. */
  'cluster.configure': [ClusterConfig, ClusterStatus];
  /** The cluster as the daemon sees it; refresh: ask every peer for fresh figures first. */
  'cluster.status': [{ refresh?: boolean }, ClusterStatus];
  /** Loads the running model again with the peers that came back. */
  'cluster.useReturned': [Record<string, never>, ClusterStatus];
}

export type Method = keyof Methods;
export type ParamsOf<M extends Method> = Methods[M][0];
export type ResultOf<M extends Method> = Methods[M][1];

export interface Events {
  status: SidecarStatus;
  progress: ProgressEvent;
  log: LogEvent;
  /** Something a user must hear about: a peer went down, the model was re-planned, a peer is back. */
  cluster: ClusterEvent;
}
export type EventName = keyof Events;

// ---- frames ----

export interface HelloFrame {
  type: 'hello';
  protocolVersion: number;
  /** May instead come in the upgrade request's Authorization: Bearer header. */
  token?: string;
  client?: { name?: string; pid?: number };
  /** Sent by a client of another version: make way when idle, or now (user confirmed). */
  retire?: 'when-idle' | 'now';
}

export interface WelcomeFrame {
  type: 'welcome';
  protocolVersion: number;
  status: SidecarStatus;
}

export interface RequestFrame<M extends Method = Method> {
  type: 'req';
  id: number;
  method: M;
  params: ParamsOf<M>;
}

export type ResponseFrame = { type: 'res'; id: number; ok: true; result: unknown } | { type: 'res'; id: number; ok: false; error: ErrorInfo };

export interface EventFrame<E extends EventName = EventName> {
  type: 'event';
  event: E;
  data: Events[E];
}

export type ClientFrame = HelloFrame | RequestFrame;
export type DaemonFrame = WelcomeFrame | ResponseFrame | EventFrame;
export type Frame = ClientFrame | DaemonFrame;

export const METHODS: readonly Method[] = [
  'status',
  'load',
  'switch',
  'unload',
  'restart',
  'logs',
  'subscribeLogs',
  'metrics',
  'shutdown',
  'cluster.configure',
  'cluster.status',
  'cluster.useReturned',
];
export const EVENTS: readonly EventName[] = ['status', 'progress', 'log', 'cluster'];
