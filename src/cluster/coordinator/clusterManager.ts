import { EventEmitter } from 'events';
import * as os from 'os';
import * as path from 'path';
import { samePlan, type ClusterConfig, type ClusterEvent, type ClusterStatus, type ServerPlan, type ServerStatus } from '../../core/protocol';
import { readGgufHeader } from '../../core/models/gguf/reader';
import { modelLayout } from '../plan/layout';
import { planSplit, range, SplitPlan } from '../plan/split';
import { PINNED_RPC_VERSION, RpcVersion } from '../rpc/protocol';
import { LinkOptions, PeerLink } from './peerLink';
import { PeerPlacements } from './placements';
import { ctxOf, hasFlag, stripFlags } from './serverArgs';
import { splitCandidates, splitDevices } from './splitCandidates';
import { RpcEndpoints } from './rpcEndpoints';
import { TunnelEndpoint } from './tunnel';

// The sidecar's side of the cluster: the configured peers (a standing control channel to each),
// a loopback tunnel endpoint per peer for llama-server's --rpc, the split decision for a load,
// and what happens when a peer goes away (mark it down, restart on what is left if the model
// fits there, offer the peer back when it returns). Whole servers placed on peers are its
// PeerPlacements (placements.ts); the flags a split rewrites are read in serverArgs.ts; which
// peers can take layers is splitCandidates.ts; the --rpc address of each is RpcEndpoints (rpcEndpoints.ts).
//
// Seams (the sidecar daemon wires them; see docs/cluster.md "Sidecar hooks"):
//   preparePlan(plan)   the plan a window asked for → the plan to run (unchanged without peers)
//   attach(supervisor)  failover drives the supervisor's load/unload
//   configure({...})    peers + tokens + mode from the extension; status() / refresh() for UI
//
// What it takes and reports (ClusterConfig, ClusterStatus, ClusterEvent) is part of the window
// protocol, src/core/protocol/cluster.ts.

/** What the manager needs of the supervisor (ServerSupervisor satisfies it). */
export interface ServerHost {
  load(plan: ServerPlan, replace?: boolean): Promise<ServerStatus>;
  unload(reason?: 'requested' | 'idle' | 'shutdown'): Promise<ServerStatus>;
  status(): ServerStatus;
  on(event: 'status', fn: (s: ServerStatus) => void): unknown;
}

const RUNNING = new Set(['loading', 'ready', 'restarting']);
/** A failed placement is tried again after this long (checked on the peer's periodic refresh). */
const PLACEMENT_RETRY_MS = 60_000;

export class ClusterPlanError extends Error {
  override readonly name = 'ClusterPlanError';
}

export interface ClusterManagerOptions extends Partial<LinkOptions> {
  log?: (m: string) => void;
  /** RPC protocol of the llama-server in use; default the pinned llama.cpp's. */
  rpcVersion?: RpcVersion;
  /** Context size when the plan's args do not say (-c). */
  defaultCtx?: number;
  /** A failed placement is tried again after this long. Default 60 s. */
  placementRetryMs?: number;
}

interface Active {
  base: ServerPlan;
  prepared: ServerPlan;
  split: SplitPlan;
  peers: string[];
}

export class ClusterManager extends EventEmitter<{ status: [ClusterStatus]; event: [ClusterEvent] }> {
  private readonly links = new Map<string, PeerLink>();
  /** Where llama-server's --rpc reaches each peer. */
  private readonly endpoints: RpcEndpoints;
  private cfg: ClusterConfig = { peers: [], mode: 'auto' };
  private active?: Active;
  private lastPlan?: ClusterStatus['plan'];
  private events: ClusterEvent[] = [];
  private host?: ServerHost;
  private failover: Promise<void> = Promise.resolve();
  /** Peers left out after they went down; offered back when they return. */
  private readonly dropped = new Set<string>();
  /** The split a failover re-planned from: useReturnedPeers plans it again once the peer is taken back. */
  private lastBase?: Active;
  private readonly log: (m: string) => void;
  private readonly linkOpts: LinkOptions;
  /** Whole servers on peers (ClusterConfig.placements). */
  private readonly placements: PeerPlacements;

  constructor(private readonly o: ClusterManagerOptions = {}) {
    super();
    this.log = o.log ?? (() => undefined);
    this.linkOpts = {
      heartbeatMs: o.heartbeatMs ?? 2000,
      deadAfterMs: o.deadAfterMs ?? 10_000,
      connectTimeoutMs: o.connectTimeoutMs ?? 5000,
      retryMinMs: o.retryMinMs ?? 1000,
      retryMaxMs: o.retryMaxMs ?? 30_000,
      refreshMs: o.refreshMs ?? 15_000,
      log: this.log,
    };
    this.placements = new PeerPlacements({
      links: this.links,
      wishes: () => this.cfg.placements,
      record: (e) => this.record(e),
      changed: () => this.changed(),
      log: this.log,
      retryMs: o.placementRetryMs ?? PLACEMENT_RETRY_MS,
      heartbeatMs: this.linkOpts.heartbeatMs,
      deadAfterMs: this.linkOpts.deadAfterMs,
    });
    this.endpoints = new RpcEndpoints({
      heartbeatMs: this.linkOpts.heartbeatMs,
      deadAfterMs: this.linkOpts.deadAfterMs,
      log: this.log,
      // An established tunnel that breaks is the same news as the control channel going down.
      broken: (name, reason) => {
        if (this.active?.peers.includes(name)) this.onPeerDown(name, reason);
      },
    });
  }

  /** Peers, tokens and mode from the extension. Unchanged peers keep their connections. */
  configure(cfg: ClusterConfig): ClusterStatus {
    this.cfg = { ...cfg, mode: cfg.mode ?? 'auto' };
    const want = new Map(cfg.peers.map((p) => [p.name, p]));
    // Tunnels llama-server is using stay open until it runs on the new plan: closing them first
    // would crash it into a restart loop on endpoints that are gone.
    const retired: TunnelEndpoint[] = [];
    const changedInUse: string[] = [];
    for (const [name, link] of this.links) {
      const p = want.get(name);
      if (!p || JSON.stringify(p) !== JSON.stringify(link.cfg)) {
        link.close();
        this.links.delete(name);
        this.dropped.delete(name);
        const t = this.endpoints.take(name);
        const inUse = !!this.active?.peers.includes(name);
        if (inUse) changedInUse.push(name);
        if (t && inUse) retired.push(t);
        else void t?.close();
      }
    }
    for (const p of cfg.peers) {
      if (this.links.has(p.name)) continue;
      const link = new PeerLink(p, this.linkOpts);
      link.on('change', () => {
        this.changed();
        if (this.placements.stale()) this.placements.reconcile();
      });
      link.on('down', (reason) => this.onPeerDown(p.name, reason));
      link.on('up', () => this.onPeerUp(p.name));
      this.links.set(p.name, link);
    }
    this.changed();
    this.placements.reconcile();
    this.replanForChangedPeers(changedInUse, retired);
    return this.status();
  }

  /** Peers holding layers were removed, disabled or changed (token, address, transport): plan and load again without their old links. */
  private replanForChangedPeers(names: string[], retired: TunnelEndpoint[]): void {
    const a = this.active;
    const host = this.host;
    if (!names.length || !a || !host || !RUNNING.has(host.status().phase)) {
      for (const t of retired) void t.close();
      return;
    }
    const model = path.basename(a.base.modelPath);
    this.failover = this.failover
      .then(async () => {
        try {
          const plan = await this.preparePlan(a.base);
          this.record({
            kind: 'replanned',
            message: `${model} restarts because peer ${names.join(', ')} changed in the settings: ${this.active ? (this.lastPlan?.summary ?? '') : 'on this machine alone'}`,
          });
          await host.load(plan, true);
        } catch (e) {
          this.record({ kind: 'load-failed', message: `${(e as Error).message} Unloaded it; pick a smaller model or add the peer back.` });
          this.active = undefined;
          await host.unload('requested').catch(() => undefined);
        } finally {
          await Promise.all(retired.map((t) => t.close()));
        }
      })
      .catch((e: Error) => this.log(`re-plan after a peer change: ${e.message}`));
  }

  /** What a window's load of `base` runs: the prepared (split) plan while `base` is the one running. */
  runningPlanFor(base: ServerPlan): ServerPlan | undefined {
    return this.active && samePlan(this.active.base, base) ? this.active.prepared : undefined;
  }

  /** The plan a window asked for, given the one the supervisor runs (windows compare against theirs). */
  requestedPlanFor(running: ServerPlan): ServerPlan {
    const a = this.active;
    return a && samePlan(a.prepared, running) ? { ...a.base, ...(running.label ? { label: running.label } : {}) } : running;
  }

  /** The split in effect, for the status bar: undefined when the model runs here alone. */
  splitSummary(): { summary: string; peers: string[] } | undefined {
    return this.active && this.lastPlan ? { summary: this.lastPlan.summary, peers: [...this.active.peers] } : undefined;
  }

  /** Failover drives this supervisor. */
  attach(host: ServerHost): void {
    this.host = host;
  }

  status(): ClusterStatus {
    const layersOf = this.lastPlan?.layers ?? {};
    return {
      mode: this.cfg.mode ?? 'auto',
      peers: [...this.links.values()].map((l) => ({
        name: l.cfg.name,
        host: l.cfg.host,
        port: l.cfg.port,
        transport: l.cfg.transport,
        enabled: l.cfg.enabled !== false,
        phase: l.phase,
        since: l.since,
        devices: l.info?.devices ?? [],
        inUse: !!this.active?.peers.includes(l.cfg.name),
        returned: this.dropped.has(l.cfg.name) && l.phase === 'up',
        servers: l.info?.servers ?? [],
        ...(l.reason ? { reason: l.reason } : {}),
        ...(l.latencyMs !== undefined ? { latencyMs: Math.round(l.latencyMs * 100) / 100 } : {}),
        ...(l.info ? { agentVersion: l.info.agent.version, hostMemory: { totalBytes: l.info.host.totalMemBytes, freeBytes: l.info.host.freeMemBytes } } : {}),
        ...(l.info?.rpc.version ? { rpcVersion: l.info.rpc.version } : {}),
        ...(this.endpoints.current(l) ? { endpoint: this.endpoints.current(l) } : {}),
        ...(layersOf[l.cfg.name] ? { layers: layersOf[l.cfg.name] } : {}),
      })),
      ...(this.lastPlan ? { plan: this.lastPlan } : {}),
      placements: this.placements.list(),
      events: this.events.slice(-20),
    };
  }

  /** Fresh latency, devices and memory from every peer that is up (probing rpc-server where idle). */
  async refresh(): Promise<ClusterStatus> {
    for (const l of this.links.values()) l.retryNow();
    await Promise.all(
      [...this.links.values()].map(async (l) => {
        await l.settled(this.linkOpts.connectTimeoutMs);
        await l.refresh(!this.active?.peers.includes(l.cfg.name));
      }),
    );
    return this.status();
  }

  /**
   * The plan to run for what a window asked: unchanged when no peer is configured, the mode is
   * off, or the model fits here (auto); otherwise with --rpc (tunnel endpoints), -ngl and
   * --tensor-split. Throws ClusterPlanError (one sentence) when it fits nowhere.
   */
  async preparePlan(base: ServerPlan, opts: { exclude?: string[] } = {}): Promise<ServerPlan> {
    const mode = this.cfg.mode ?? 'auto';
    // Peers dropped after going down stay out until the user takes them back (useReturnedPeers).
    const usable = [...this.links.values()].filter((l) => l.cfg.enabled !== false && !opts.exclude?.includes(l.cfg.name) && !this.dropped.has(l.cfg.name));
    if (mode === 'off' || usable.length === 0 || hasFlag(base.args, ['--rpc'])) {
      // Nothing of the last split holds any more (status and messages must not show it).
      this.active = undefined;
      this.lastPlan = undefined;
      this.changed();
      return base;
    }
    await Promise.all(usable.map((l) => l.settled(this.linkOpts.connectTimeoutMs)));
    const { candidates, notes } = await splitCandidates(usable, this.o.rpcVersion ?? PINNED_RPC_VERSION);
    const header = await readGgufHeader(base.modelPath, { maxArrayItems: 0 });
    const layout = modelLayout(header, { ctx: ctxOf(base.args) ?? this.o.defaultCtx ?? 4096 });
    const devices = splitDevices(candidates, this.cfg.localDevices ?? []);
    const split = planSplit({ layout, devices, mode: mode === 'split' ? 'split' : 'auto', hostFreeBytes: this.cfg.hostFreeBytes ?? os.freemem() });
    const model = path.basename(base.modelPath);
    if (!split.fits) {
      const msg = `${model}: ${split.summary}${notes.length ? ` (${notes.join('; ')})` : ''}`;
      this.record({ kind: 'load-failed', message: msg });
      throw new ClusterPlanError(msg);
    }
    for (const n of notes) this.record({ kind: 'peer-excluded', message: `Loading ${model} without it: ${n}.` });
    const layers: Record<string, string> = {};
    for (const sh of split.shares) layers[sh.device.host] = [layers[sh.device.host], range(sh.from, sh.to, split.nLayer)].filter(Boolean).join(', ');
    this.lastPlan = { summary: split.summary, lines: split.lines, peersUsed: split.peersUsed, args: split.args, model, layers };
    this.log(`plan for ${model}: ${split.summary}\n  ${split.lines.join('\n  ')}`);
    if (split.peersUsed.length === 0) {
      this.active = undefined;
      this.changed();
      return base;
    }
    // --rpc lists only the peers that hold layers; --tensor-split then covers their devices and the local ones.
    const used = candidates.filter((l) => split.peersUsed.includes(l.cfg.name));
    const endpoints: string[] = [];
    const ts: number[] = [];
    for (const l of used) {
      endpoints.push(await this.endpoints.open(l));
      devices.forEach((d, i) => {
        if (d.host === l.cfg.name) ts.push(split.tensorSplit[i]);
      });
    }
    devices.forEach((d, i) => {
      if (d.host === 'local') ts.push(split.tensorSplit[i]);
    });
    const args = [
      ...stripFlags(base.args, ['--rpc', '-ngl', '--n-gpu-layers', '--gpu-layers', '-ts', '--tensor-split']),
      '--rpc',
      endpoints.join(','),
      '-ngl',
      String(split.ngl),
    ];
    if (ts.length > 1) args.push('--tensor-split', ts.join(','));
    const prepared: ServerPlan = { ...base, args };
    this.active = { base, prepared, split, peers: split.peersUsed };
    this.changed();
    return prepared;
  }

  /** The user takes returned peers back: the running model is planned and loaded again with them. */
  async useReturnedPeers(): Promise<ClusterStatus> {
    this.dropped.clear();
    const a = this.active ?? this.lastBase;
    if (a && this.host && RUNNING.has(this.host.status().phase)) {
      const plan = await this.preparePlan(a.base);
      await this.host.load(plan, true);
    }
    return this.status();
  }

  async close(): Promise<void> {
    this.cfg = { ...this.cfg, placements: [] };
    await this.placements.close();
    for (const l of this.links.values()) l.close();
    this.links.clear();
    await this.endpoints.close();
  }

  // ---- internals ----

  private onPeerDown(name: string, reason: string): void {
    const a = this.active;
    if (!a || !a.peers.includes(name) || this.dropped.has(name)) return;
    this.dropped.add(name);
    this.record({
      kind: 'peer-down',
      peer: name,
      message: `Peer ${name} went away while holding layers of ${path.basename(a.base.modelPath)} (${reason}); a request running on it was cut off. Restarting on the remaining devices.`,
    });
    this.failover = this.failover.then(() => this.replanWithout(a)).catch((e: Error) => this.log(`failover: ${e.message}`));
  }

  private async replanWithout(a: Active): Promise<void> {
    if (this.active !== a || !this.host) return;
    // Nothing runs (unloaded, idle): the next load plans without the peer anyway.
    if (!RUNNING.has(this.host.status().phase)) return;
    this.lastBase = a;
    const exclude = [...this.dropped];
    let plan: ServerPlan;
    try {
      plan = await this.preparePlan(a.base);
    } catch (e) {
      this.record({ kind: 'load-failed', message: `${(e as Error).message} Unloaded it; it loads again when the peer is back or you pick a smaller model.` });
      this.active = undefined;
      await this.host.unload('requested').catch(() => undefined);
      return;
    }
    this.record({
      kind: 'replanned',
      message: `${path.basename(a.base.modelPath)} restarts without ${exclude.join(', ')}: ${this.active ? (this.lastPlan?.summary ?? '') : 'on this machine alone'}`,
    });
    await this.host.load(plan, true).catch((e: Error) => this.record({ kind: 'load-failed', message: e.message }));
  }

  private onPeerUp(name: string): void {
    if (!this.dropped.has(name)) return;
    this.record({
      kind: 'peer-returned',
      peer: name,
      message: `Peer ${name} is back. Use it again ("Strata: Show Cluster" → Use Returned Peers) to spread the model over it.`,
    });
  }

  private record(e: Omit<ClusterEvent, 'at'>): void {
    const ev = { at: Date.now(), ...e };
    this.events.push(ev);
    if (this.events.length > 100) this.events.shift();
    this.log(`cluster: ${ev.message}`);
    this.emit('event', ev);
    this.changed();
  }

  private changed(): void {
    this.emit('status', this.status());
  }
}
