import * as crypto from 'crypto';
import * as path from 'path';
import { CONNECTION_FILE_NAME } from '../core/llama/serverConnection';
import {
  ClusterSummary,
  LogEvent,
  Method,
  MetricsResult,
  ProgressEvent,
  ProtocolError,
  ServerPlan,
  ServerStatus,
  SidecarStatus,
  samePlan,
  validateClusterConfig,
  validatePlan,
} from '../core/protocol';
import { ClusterManager, ClusterPlanError } from '../cluster/coordinator/clusterManager';
import {
  DAEMON_LOG_NAME,
  ensureStateDir,
  isLockLive,
  readSidecarLock,
  removeSidecarLockIfOwned,
  SERVER_LOG_NAME,
  withStateMutex,
  writeSidecarLock,
} from '../core/daemonClient/lockFile';
import { bootId, isPidAlive, processStartTime } from '../core/daemonClient/processInfo';
import { ChildRecord, ChildRegistry, judgeRecord, terminate } from './childRegistry';
import { DaemonConfig } from './config';
import { ClientConn, ControlServer } from './controlServer';
import { fail } from './failures';
import { selectLifetimeGuard } from './lifetimeGuard';
import { Logger } from './logger';
import { rssBytes } from './metrics';
import { ServerSupervisor } from './supervisor';

// The daemon: claims the one-per-user lock, cleans up after a dead predecessor, serves the
// control socket, and runs the supervisor. It exits when no window has been connected for a
// while, when asked, or when a newer daemon needs its place.

/** Exit status of a daemon that found another one already running (not an error). */
export const EXIT_ALREADY_RUNNING = 3;

export class Daemon {
  private readonly log = new Logger();
  private readonly startedAt = Date.now();
  private readonly token = crypto.randomBytes(32).toString('base64url');
  private readonly registry: ChildRegistry;
  private readonly supervisor: ServerSupervisor;
  private readonly control: ControlServer;
  /** Peers: split a model over them, or run whole models on them (placement). Idle without peers. */
  private readonly cluster = new ClusterManager({ log: (m) => this.log.info(m) });
  private lastClusterSummary = '';
  private readonly serverLogFile: string;
  private readonly logFile: string;
  private idleTimer?: NodeJS.Timeout;
  private retiring = false;
  private shuttingDown = false;
  private pendingLines: LogEvent[] = [];
  private flushTimer?: NodeJS.Timeout;

  constructor(private readonly cfg: DaemonConfig) {
    this.logFile = path.join(cfg.stateDir, DAEMON_LOG_NAME);
    this.serverLogFile = path.join(cfg.stateDir, SERVER_LOG_NAME);
    this.registry = new ChildRegistry(path.join(cfg.stateDir, 'children'));
    // dist/sidecar.js -> the extension root, where the native addon is looked for.
    const guard = selectLifetimeGuard(cfg.guard, path.resolve(__dirname, '..'), (m) => this.log.warn(m));
    this.supervisor = new ServerSupervisor({
      registry: this.registry,
      serverLogFile: this.serverLogFile,
      connectionFile: path.join(cfg.stateDir, CONNECTION_FILE_NAME),
      log: (m) => this.log.info(m),
      restart: cfg.restart,
      maxCrashes: cfg.maxCrashes,
      stableMs: cfg.stableMs,
      stopGraceMs: cfg.stopGraceMs,
      activityPollMs: cfg.activityPollMs,
      healthPollMs: cfg.healthPollMs,
      hangCheck: cfg.hangCheck,
      defaultReadyTimeoutMs: cfg.defaultReadyTimeoutMs,
      guard,
      watchdog: cfg.watchdog,
      routerMode: cfg.routerMode,
    });
    this.control = new ControlServer({
      token: this.token,
      protocolVersion: cfg.protocolVersion,
      helloTimeoutMs: cfg.helloTimeoutMs,
      maxPending: cfg.maxPendingConnections,
      log: (m) => this.log.info(m),
      handler: {
        status: () => this.status(),
        request: (conn, method, params) => this.request(conn, method, params),
        clientsChanged: (n) => this.clientsChanged(n),
        retire: (mode) => this.retire(mode),
      },
    });
  }

  /** Resolves once serving; returns false if another daemon already runs (the caller exits). */
  async start(): Promise<boolean> {
    ensureStateDir(this.cfg.stateDir);
    this.log.info(`strata sidecar ${this.cfg.version} (protocol ${this.cfg.protocolVersion}) starting; node ${process.version}; state ${this.cfg.stateDir}`);
    const port = await this.control.listen();
    // Check-and-write under a mutex: two daemons started at once must not both think they won.
    const other = await withStateMutex(this.cfg.stateDir, 'sidecar.claim', async () => {
      const cur = readSidecarLock(this.cfg.stateDir);
      if (cur && cur.pid !== process.pid && isLockLive(cur)) return cur;
      await this.waitForPredecessorServers();
      // Orphans of a dead predecessor go before anyone can find this daemon and load a model
      // next to them: two 40 GB servers at once is what this whole exercise prevents.
      const reaped = await this.registry.reapStale({ graceMs: 1000, log: (m) => this.log.warn(m) });
      if (reaped.length) this.log.info(`pid files checked: ${reaped.map((r) => `${r.rec.pid}=${r.verdict}`).join(', ')}`);
      writeSidecarLock(this.cfg.stateDir, {
        pid: process.pid,
        port,
        token: this.token,
        protocolVersion: this.cfg.protocolVersion,
        startedAt: this.startedAt,
        processStartTime: processStartTime(process.pid),
        bootId: bootId(),
        version: this.cfg.version,
        logFile: this.logFile,
      });
      return undefined;
    });
    if (other) {
      this.log.info(`another sidecar (pid ${other.pid}) is already running; this one exits`);
      await this.control.close();
      return false;
    }
    this.installExitHooks();
    this.supervisor.on('status', () => this.control.broadcast('status', this.status()));
    // Failover (a peer gone, a peer back) drives the supervisor; windows hear the events and see
    // the split and the placed servers in the status.
    this.cluster.attach(this.supervisor);
    this.cluster.on('event', (e) => this.control.broadcast('cluster', e));
    this.cluster.on('status', () => {
      const key = JSON.stringify(this.clusterSummary() ?? null);
      if (key === this.lastClusterSummary) return;
      this.lastClusterSummary = key;
      this.control.broadcast('status', this.status());
    });
    this.supervisor.on('progress', (p) => this.control.broadcast('progress', p));
    this.supervisor.on('line', (line) => this.queueLog('server', line));
    this.log.onLine((line) => this.queueLog('daemon', line));
    this.log.info(`listening on 127.0.0.1:${port}; idle exit after ${Math.round(this.cfg.idleExitMs / 1000)} s without clients`);
    this.clientsChanged(0);
    return true;
  }

  /**
   * A daemon that has given up its lock may still be stopping its llama-server (one of an older
   * Strata removed the lock first): loading a model next to it would hold two in memory, so this
   * one waits for it, and gives up with a message if it does not stop within its grace time.
   */
  private async waitForPredecessorServers(): Promise<void> {
    const live = (): ChildRecord[] => this.registry.list().filter((r) => r.daemonPid !== process.pid && judgeRecord(r) === 'owned' && isPidAlive(r.pid));
    let left = live();
    if (!left.length) return;
    this.log.info(`waiting for sidecar pid ${left[0].daemonPid} to stop its llama-server (pid ${left[0].pid})`);
    const until = Date.now() + this.cfg.stopGraceMs + 5000;
    while (left.length && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      left = live();
    }
    if (left.length) {
      throw new Error(
        `another Strata sidecar (pid ${left[0].daemonPid}) still runs llama-server (pid ${left[0].pid}) without holding the lock; wait for it to stop, or end it (kill ${left[0].daemonPid}), then try again`,
      );
    }
  }

  status(): SidecarStatus {
    const cluster = this.clusterSummary();
    return {
      ...(cluster ? { cluster } : {}),
      daemon: {
        pid: process.pid,
        startedAt: this.startedAt,
        protocolVersion: this.cfg.protocolVersion,
        version: this.cfg.version,
        logFile: this.logFile,
        serverLogFile: this.serverLogFile,
        clients: this.control.clientCount,
        retiring: this.retiring,
      },
      server: this.asRequested(this.supervisor.status()),
    };
  }

  private clusterSummary(): ClusterSummary | undefined {
    const cs = this.cluster.status();
    if (!cs.peers.length) return undefined;
    const split = this.cluster.splitSummary();
    return {
      ...(split ? { split } : {}),
      placements: cs.placements,
      peers: { up: cs.peers.filter((p) => p.phase === 'up').length, total: cs.peers.length },
    };
  }

  /** Windows see the plan they asked for, not the split the cluster made of it (they compare plans). */
  private asRequested(s: ServerStatus): ServerStatus {
    return s.plan ? { ...s, plan: this.cluster.requestedPlanFor(s.plan) } : s;
  }

  /** Restart planned afresh: peers added or back since the load are used, peers gone are left out. */
  private async restartPlan(): Promise<ServerStatus> {
    const cur = this.supervisor.status();
    if (!cur.plan) return this.asRequested(await this.supervisor.restart());
    const plan = await this.prepare(this.cluster.requestedPlanFor(cur.plan));
    return this.asRequested(samePlan(plan, cur.plan) ? await this.supervisor.restart() : await this.supervisor.load(plan, true));
  }

  /** A window's plan → what runs: the split the cluster makes of it (or it as is, without peers). */
  private async loadPlan(base: ServerPlan, replace: boolean): Promise<ServerStatus> {
    const cur = this.supervisor.status();
    const running = ['loading', 'ready', 'restarting'].includes(cur.phase);
    const joining = running ? this.cluster.runningPlanFor(base) : undefined;
    if (joining) return this.asRequested(await this.supervisor.load(joining, replace));
    // Another model runs and this is no switch: the supervisor says 'busy' before any peer is asked.
    if (running && !replace && cur.plan && !samePlan(this.cluster.requestedPlanFor(cur.plan), base)) {
      return this.asRequested(await this.supervisor.load(base, false));
    }
    return this.asRequested(await this.supervisor.load(await this.prepare(base), replace));
  }

  /** The cluster's plan for `base`; a model that fits nowhere is a load failure with the cluster's one sentence. */
  private async prepare(base: ServerPlan): Promise<ServerPlan> {
    try {
      return await this.cluster.preparePlan(base);
    } catch (e) {
      if (e instanceof ClusterPlanError) throw fail('model-load-failed', e.message);
      throw e;
    }
  }
  /** For work that runs inside the daemon besides the supervisor (builds, downloads): tells every window. */
  reportProgress(event: ProgressEvent): void {
    this.control.broadcast('progress', event);
  }

  private async request(conn: ClientConn, method: Method, params: Record<string, unknown>): Promise<unknown> {
    if (this.shuttingDown && method !== 'status') throw fail('shutting-down', 'The Strata sidecar is shutting down; a new one starts on the next request.');
    switch (method) {
      case 'status':
        return this.status();
      case 'load':
        return this.loadPlan(validatePlan(params.plan), params.replace === true);
      case 'switch':
        return this.loadPlan(validatePlan(params.plan), true);
      case 'unload':
        return this.supervisor.unload('requested');
      case 'restart':
        return this.restartPlan();
      case 'cluster.configure': {
        const cfg = validateClusterConfig(params);
        this.log.info(
          `cluster: ${cfg.peers.length} peer(s) from client ${conn.id}${cfg.peers.length ? ` (${cfg.peers.map((p) => `${p.name}=${p.host}:${p.port}/${p.transport}`).join(', ')})` : ''}, mode ${cfg.mode ?? 'auto'}${cfg.placements?.length ? `, placements ${cfg.placements.map((w) => `${w.role}→${w.peer}`).join(', ')}` : ''}`,
        );
        return this.cluster.configure(cfg);
      }
      case 'cluster.status':
        return params.refresh === true ? this.cluster.refresh() : this.cluster.status();
      case 'cluster.useReturned':
        return this.cluster.useReturnedPeers();
      case 'logs': {
        const n = typeof params.lines === 'number' ? Math.max(0, Math.min(5000, Math.floor(params.lines))) : 200;
        if (params.source === 'daemon') return { lines: this.log.ring.tail(n), file: this.logFile };
        if (params.source === 'server') return { lines: this.supervisor.serverLog.tail(n), file: this.serverLogFile };
        throw new ProtocolError('logs.source must be "server" or "daemon"');
      }
      case 'subscribeLogs':
        conn.wantsLogs = params.on === true;
        return {};
      case 'metrics': {
        const pid = this.supervisor.serverPid;
        const result: MetricsResult = {
          server: await this.supervisor.metrics().catch(() => ({})),
          daemonRssBytes: process.memoryUsage().rss,
          uptimeMs: Date.now() - this.startedAt,
        };
        const rss = pid !== undefined ? rssBytes(pid) : undefined;
        if (rss !== undefined) result.serverRssBytes = rss;
        return result;
      }
      case 'shutdown':
        if (params.whenIdle === true && this.control.clientCount > 1) {
          this.retiring = true;
          this.log.info(`client ${conn.id} asked for shutdown once the other windows are gone`);
        } else {
          setImmediate(() => void this.shutdown(`requested by client ${conn.id}`));
        }
        return {};
    }
  }

  private clientsChanged(n: number): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (n > 0 || this.shuttingDown) return;
    if (this.retiring) {
      void this.shutdown('retired: its last client left');
      return;
    }
    this.idleTimer = setTimeout(() => void this.shutdown(`no client for ${Math.round(this.cfg.idleExitMs / 1000)} s`), this.cfg.idleExitMs);
  }

  private retire(mode: 'when-idle' | 'now'): void {
    this.retiring = true;
    if (mode === 'now' || this.control.clientCount === 0) void this.shutdown(`replaced by a newer sidecar (${mode})`);
    else this.control.broadcast('status', this.status());
  }

  private queueLog(source: 'server' | 'daemon', line: string): void {
    // Batched: llama-server prints hundreds of lines while loading; one frame per 100 ms is plenty.
    const last = this.pendingLines[this.pendingLines.length - 1];
    if (last && last.source === source) last.lines.push(line);
    else this.pendingLines.push({ source, lines: [line] });
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      const batch = this.pendingLines;
      this.pendingLines = [];
      for (const ev of batch) this.control.broadcast('log', ev, (c) => c.wantsLogs);
    }, 100);
  }

  async shutdown(reason: string): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    clearTimeout(this.idleTimer);
    this.log.info(`shutting down: ${reason}`);
    // The lock stays until llama-server is gone. A window that comes back meanwhile finds this
    // daemon, is told it is shutting down, and retries until the next one runs; with the lock
    // gone first, it started that next daemon at once, which loaded a second model beside the
    // one still stopping here.
    this.control.shutDown();
    const pid = this.supervisor.serverPid;
    try {
      await this.supervisor.close();
    } catch (e) {
      this.log.error(`stopping llama-server: ${(e as Error).message}`);
      this.supervisor.killNow();
      if (pid !== undefined) await terminate(pid, 0);
    }
    // After llama-server: its --rpc connections go through the tunnels this closes. Placed
    // servers on peers are stopped too, so that nothing of ours keeps a peer's memory.
    await this.cluster.close().catch((e: Error) => this.log.error(`closing the cluster: ${e.message}`));
    removeSidecarLockIfOwned(this.cfg.stateDir, process.pid);
    await this.control.close();
    this.log.info('bye');
    process.exit(0);
  }

  private installExitHooks(): void {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void this.shutdown(`signal ${sig}`));
    process.on('uncaughtException', (e) => {
      this.log.error(`uncaught exception: ${e.stack ?? e.message}`);
      this.hardExit(1);
    });
    process.on('unhandledRejection', (e) => {
      this.log.error(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`);
    });
    // Whatever path leads to exit, the child goes with us.
    process.on('exit', () => {
      this.supervisor.killNow();
      removeSidecarLockIfOwned(this.cfg.stateDir, process.pid);
    });
  }

  private hardExit(code: number): never {
    this.supervisor.killNow();
    removeSidecarLockIfOwned(this.cfg.stateDir, process.pid);
    process.exit(code);
  }
}
