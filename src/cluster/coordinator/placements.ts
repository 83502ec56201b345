import type { ClusterEvent, PlacementRole, PlacementStatus, PlacementWish } from '../../core/protocol';
import { PeerLink } from './peerLink';
import { TunnelEndpoint } from './tunnel';

// Placements: a whole llama-server for a role (completions or chat) on a peer, reached through a
// loopback tunnel endpoint. Apart from the layer split in clusterManager.ts because it has its
// own lifecycle: the user's wishes are reconciled against what the agents report, one pass at a
// time, and a placement that fails or loses its peer leaves the local server answering meanwhile.

/** What placements need of the cluster manager that owns them. */
export interface PlacementContext {
  /** The manager's live peer links, by name. */
  readonly links: ReadonlyMap<string, PeerLink>;
  /** What the user asked to place (ClusterConfig.placements). */
  wishes(): readonly PlacementWish[] | undefined;
  /** A cluster event for the windows (and the log). */
  record(e: Omit<ClusterEvent, 'at'>): void;
  /** The cluster status changed. */
  changed(): void;
  log(m: string): void;
  /** A failed placement is tried again after this long (checked on the peer's periodic refresh). */
  retryMs: number;
  /** The tunnels' heartbeat settings (the peer links'). */
  heartbeatMs: number;
  deadAfterMs: number;
}

export class PeerPlacements {
  private readonly placed = new Map<PlacementRole, PlacementStatus>();
  /** Tunnel endpoints of placed servers, by `peer/server/role`. */
  private readonly tunnels = new Map<string, TunnelEndpoint>();
  private placing: Promise<void> = Promise.resolve();
  private placeQueued = false;

  constructor(private readonly c: PlacementContext) {}

  /** For the cluster status (copies). */
  list(): PlacementStatus[] {
    return [...this.placed.values()].map((p) => ({ ...p }));
  }

  /** A placement whose peer changed phase since it was last looked at. */
  stale(): boolean {
    for (const w of this.c.wishes() ?? []) {
      const st = this.placed.get(w.role);
      const l = this.c.links.get(w.peer);
      const up = l?.phase === 'up';
      if (!st || (up && st.phase === 'down') || (l && !up && st.phase !== 'down')) return true;
      // The agent restarted, or its llama-server for this role died: place it again.
      if (up && st.phase === 'ready' && !placedOnAgent(l, w.role)) return true;
      // A start that failed (a model still copying, memory taken by something else) is tried again now and then.
      if (up && st.phase === 'failed' && Date.now() - st.since >= this.c.retryMs) return true;
    }
    return false;
  }

  /** Brings the placed servers in line with the wishes; one pass at a time, a change during a pass queues one more. */
  reconcile(): void {
    if (this.placeQueued) return;
    this.placeQueued = true;
    this.placing = this.placing
      .then(async () => {
        this.placeQueued = false;
        await this.placeOnce();
      })
      .catch((e: Error) => this.c.log(`placement: ${e.message}`));
  }

  /** A whole llama-server for `role` on a peer; the URL is a loopback tunnel endpoint. */
  async place(peer: string, role: string, model: string, args: string[] = []): Promise<{ url: string; apiKey: string; role: string; peer: string }> {
    const l = this.c.links.get(peer);
    if (!l?.control) throw new Error(`Peer ${peer} is not connected${l?.reason ? `: ${l.reason}` : ''}.`);
    const st = await l.control.request('server.start', { role, model, args }, 0);
    const key = `${peer}/server/${role}`;
    let t = this.tunnels.get(key);
    if (!t) {
      t = new TunnelEndpoint(
        { host: l.cfg.host, port: l.cfg.port, token: l.cfg.token, label: peer },
        { open: 'server', role },
        {
          heartbeatMs: this.c.heartbeatMs,
          deadAfterMs: this.c.deadAfterMs,
          log: this.c.log,
        },
      );
      await t.listen();
      this.tunnels.set(key, t);
    }
    await l.refresh(false);
    return { url: `http://${t.endpoint}`, apiKey: st.apiKey ?? '', role, peer };
  }

  async unplace(peer: string, role: string): Promise<void> {
    await this.c.links.get(peer)?.control?.request('server.stop', { role });
    const key = `${peer}/server/${role}`;
    await this.tunnels.get(key)?.close();
    this.tunnels.delete(key);
  }

  /** Stops the placed servers (they hold a peer's memory) and closes their tunnels; call with the wishes emptied. */
  async close(): Promise<void> {
    // Do not let a silent peer hold up an exit.
    const placed = [...this.placed.values()].filter((p) => p.phase === 'ready' || p.phase === 'starting');
    this.placed.clear();
    await Promise.race([Promise.all(placed.map((p) => this.unplace(p.peer, p.role).catch(() => undefined))), new Promise((r) => setTimeout(r, 3000).unref())]);
    await Promise.all([...this.tunnels.values()].map((t) => t.close()));
    this.tunnels.clear();
  }

  private async placeOnce(): Promise<void> {
    const wishes = new Map((this.c.wishes() ?? []).map((w) => [w.role, w]));
    for (const [role, st] of [...this.placed]) {
      const w = wishes.get(role);
      if (w && w.peer === st.peer && w.model === st.model) continue;
      this.placed.delete(role);
      this.c.changed();
      await this.unplace(st.peer, role).catch((e: Error) => this.c.log(`placement: stopping ${role} on ${st.peer}: ${e.message}`));
    }
    for (const w of wishes.values()) {
      const l = this.c.links.get(w.peer);
      const cur = this.placed.get(w.role);
      if (!l) {
        this.setPlaced(w, 'failed', { error: `No peer named ${w.peer} is configured.` });
        continue;
      }
      if (l.phase !== 'up') {
        if (cur?.phase !== 'down' || cur.error !== l.reason) {
          const error = `Peer ${w.peer} is ${l.phase === 'auth-failed' ? 'refusing the token' : l.phase === 'incompatible' ? 'incompatible' : 'not reachable'}${l.reason ? ` (${l.reason})` : ''}; the local server answers ${w.role === 'fim' ? 'completions' : 'chat'} meanwhile.`;
          this.setPlaced(w, 'down', { error });
          // Only a placement that was serving is news; one that never came up was announced as failed.
          if (cur?.phase === 'ready') this.c.record({ kind: 'placement-down', peer: w.peer, role: w.role, message: error });
        }
        continue;
      }
      if ((cur?.phase === 'ready' && placedOnAgent(l, w.role)) || (cur?.phase === 'failed' && Date.now() - cur.since < this.c.retryMs)) continue;
      this.setPlaced(w, 'starting');
      try {
        const r = await this.place(w.peer, w.role, w.model, w.args ?? []);
        if (this.c.wishes()?.some((x) => x.role === w.role && x.peer === w.peer && x.model === w.model)) {
          this.setPlaced(w, 'ready', { url: r.url, apiKey: r.apiKey });
          this.c.record({
            kind: 'placed',
            peer: w.peer,
            role: w.role,
            message: `${w.model} serves ${w.role === 'fim' ? 'completions' : 'chat'} from ${w.peer}.`,
          });
        }
      } catch (e) {
        const msg = `${w.model} could not start on ${w.peer} for ${w.role === 'fim' ? 'completions' : 'chat'}: ${(e as Error).message}`;
        // A retry that fails the same way is not news (windows show a warning per event).
        const again = cur?.phase === 'failed' && cur.error === msg;
        this.setPlaced(w, 'failed', { error: msg });
        if (again) this.c.log(`placement: ${msg} (again)`);
        else this.c.record({ kind: 'placement-failed', peer: w.peer, role: w.role, message: `${msg} The local server answers meanwhile.` });
      }
    }
  }

  private setPlaced(w: PlacementWish, phase: PlacementStatus['phase'], extra: { url?: string; apiKey?: string; error?: string } = {}): void {
    this.placed.set(w.role, { role: w.role, peer: w.peer, model: w.model, phase, since: Date.now(), ...extra });
    this.c.changed();
  }
}

function placedOnAgent(l: PeerLink | undefined, role: string): boolean {
  return !!l?.info?.servers.some((s) => s.role === role && s.phase === 'ready');
}
