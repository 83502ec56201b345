// Where llama-server's --rpc reaches each peer's rpc-server: the peer's own port for the direct
// transport, else a loopback TunnelEndpoint (authenticated, one per peer) opened on first use and
// kept while the peer's settings stay the same. The cluster manager decides which peers; this, how.

import { PeerLink } from './peerLink';
import { TunnelEndpoint } from './tunnel';

export interface RpcEndpointsOptions {
  heartbeatMs: number;
  deadAfterMs: number;
  log: (m: string) => void;
  /** A tunnel llama-server was given broke. */
  broken: (peer: string, reason: string) => void;
}

export class RpcEndpoints {
  private readonly tunnels = new Map<string, TunnelEndpoint>();

  constructor(private readonly o: RpcEndpointsOptions) {}

  /** The address in use for the peer, for status; undefined while there is none. */
  current(l: PeerLink): string | undefined {
    if (l.cfg.transport === 'direct') return l.info?.rpc.mode === 'direct' && l.info.rpc.port ? `${l.cfg.host}:${l.info.rpc.port}` : undefined;
    return this.tunnels.get(l.cfg.name)?.endpoint;
  }

  /** Starts the peer's rpc-server and returns the address llama-server reaches it at. */
  async open(l: PeerLink): Promise<string> {
    const st = await l.control!.request('rpc.start', { mode: l.cfg.transport }, 120_000);
    if (l.cfg.transport === 'direct') {
      await l.refresh(false);
      return `${l.cfg.host}:${st.port}`;
    }
    let t = this.tunnels.get(l.cfg.name);
    if (!t) {
      t = new TunnelEndpoint(
        { host: l.cfg.host, port: l.cfg.port, token: l.cfg.token, label: l.cfg.name },
        { open: 'rpc' },
        {
          heartbeatMs: this.o.heartbeatMs,
          deadAfterMs: this.o.deadAfterMs,
          log: this.o.log,
        },
      );
      t.on('broken', (e) => this.o.broken(l.cfg.name, e.message));
      await t.listen();
      this.tunnels.set(l.cfg.name, t);
    }
    return t.endpoint;
  }

  /** Hands the peer's tunnel to the caller to close (now, or once llama-server has left it). */
  take(name: string): TunnelEndpoint | undefined {
    const t = this.tunnels.get(name);
    this.tunnels.delete(name);
    return t;
  }

  async close(): Promise<void> {
    await Promise.all([...this.tunnels.values()].map((t) => t.close()));
    this.tunnels.clear();
  }
}
