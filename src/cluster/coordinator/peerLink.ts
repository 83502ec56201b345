import { EventEmitter } from 'events';
import type { PeerPhase, PeerWithToken } from '../../core/protocol';
import { AgentInfo } from '../protocol';
import { AgentConnectError, AgentControlClient, describeAgent } from '../transport/agentClient';
import { PeerAuthError } from '../transport/peerHandshake';

// The sidecar's standing connection to one peer agent: a control channel kept open (it holds
// the agent's rpc-server up and its heartbeats tell within seconds when the peer goes away),
// reconnected with backoff while the peer is down, with the last info and latency.

export interface LinkEvents {
  /** Phase or info changed. */
  change: [];
  /** Was up, now is not (reason in link.reason). */
  down: [string];
  /** Was down, answers again. */
  up: [];
}

export interface LinkOptions {
  heartbeatMs: number;
  deadAfterMs: number;
  connectTimeoutMs: number;
  /** Reconnect backoff bounds. */
  retryMinMs: number;
  retryMaxMs: number;
  /** Refresh info and latency this often while up. */
  refreshMs: number;
  log: (m: string) => void;
}

export class PeerLink extends EventEmitter<LinkEvents> {
  phase: PeerPhase = 'connecting';
  reason?: string;
  since = Date.now();
  info?: AgentInfo;
  latencyMs?: number;
  private client?: AgentControlClient;
  private retryMs: number;
  private retryTimer?: NodeJS.Timeout;
  private refreshTimer?: NodeJS.Timeout;
  private closed = false;
  private wasUp = false;
  private connecting?: Promise<void>;

  constructor(
    public cfg: PeerWithToken,
    private readonly o: LinkOptions,
  ) {
    super();
    this.retryMs = o.retryMinMs;
    if (cfg.enabled === false) this.setPhase('disabled');
    else this.connect();
  }

  get label(): string {
    return describeAgent({ ...this.cfg, label: this.cfg.name });
  }

  get control(): AgentControlClient | undefined {
    return this.phase === 'up' ? this.client : undefined;
  }

  /** Resolves once the current connection attempt settled (for a load that wants fresh state). */
  async settled(timeoutMs: number): Promise<void> {
    if (this.phase !== 'connecting' || !this.connecting) return;
    await Promise.race([this.connecting, new Promise((r) => setTimeout(r, timeoutMs))]);
  }

  /** Tries now instead of waiting out the backoff. */
  retryNow(): void {
    if (this.closed || this.cfg.enabled === false || this.phase === 'up' || this.connecting) return;
    clearTimeout(this.retryTimer);
    this.connect();
  }

  async refresh(probe: boolean): Promise<void> {
    const c = this.control;
    if (!c) return;
    try {
      this.latencyMs = await c.ping();
      this.info = await c.info(probe);
      this.emit('change');
    } catch (e) {
      this.o.log(`${this.label}: refresh failed: ${(e as Error).message}`);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.refreshTimer);
    this.client?.close();
    this.client = undefined;
  }

  private connect(): void {
    this.connecting = (async () => {
      try {
        const c = await AgentControlClient.connect(
          { host: this.cfg.host, port: this.cfg.port, token: this.cfg.token, label: this.cfg.name },
          {
            heartbeatMs: this.o.heartbeatMs,
            deadAfterMs: this.o.deadAfterMs,
            timeoutMs: this.o.connectTimeoutMs,
          },
        );
        if (this.closed) {
          c.close();
          return;
        }
        this.client = c;
        const t0 = performance.now();
        this.info = await c.info(false);
        this.latencyMs = performance.now() - t0;
        c.on('close', (err) => this.onClose(c, err));
        this.retryMs = this.o.retryMinMs;
        const returned = this.wasUp && this.phase !== 'up';
        this.wasUp = true;
        this.setPhase('up');
        this.o.log(
          `${this.label}: up (agent ${this.info.agent.version}, rpc-server ${this.info.rpc.version ?? 'not started'}, ${this.latencyMs.toFixed(1)} ms)`,
        );
        if (returned) this.emit('up');
        clearInterval(this.refreshTimer);
        this.refreshTimer = setInterval(() => void this.refresh(false), this.o.refreshMs);
        this.refreshTimer.unref();
      } catch (e) {
        if (this.closed) return;
        const err = e as Error;
        if (err instanceof PeerAuthError && (err.code === 'bad-token' || err.code === 'agent-unverified')) {
          this.setPhase('auth-failed', err.message);
          this.schedule(Math.max(this.o.retryMaxMs, 60_000));
        } else if ((err instanceof PeerAuthError || err instanceof AgentConnectError) && err.code === 'version') {
          this.setPhase('incompatible', err.message);
          this.schedule(Math.max(this.o.retryMaxMs, 60_000));
        } else {
          this.setPhase('down', err.message);
          this.schedule(err instanceof PeerAuthError && err.retryAfterMs ? err.retryAfterMs : this.retryMs);
          this.retryMs = Math.min(this.o.retryMaxMs, this.retryMs * 2);
        }
      } finally {
        this.connecting = undefined;
      }
    })();
  }

  private onClose(c: AgentControlClient, err: Error | undefined): void {
    if (this.client !== c || this.closed) return;
    this.client = undefined;
    clearInterval(this.refreshTimer);
    const reason = err?.message ?? `${this.label} closed the connection.`;
    this.o.log(`${this.label}: down: ${reason}`);
    this.setPhase('down', reason);
    this.emit('down', reason);
    this.schedule(this.o.retryMinMs);
  }

  private schedule(ms: number): void {
    clearTimeout(this.retryTimer);
    if (this.closed) return;
    this.retryTimer = setTimeout(() => this.connect(), ms);
    this.retryTimer.unref();
  }

  private setPhase(p: PeerPhase, reason?: string): void {
    if (p !== this.phase) this.since = Date.now();
    this.phase = p;
    this.reason = reason;
    this.emit('change');
  }
}
