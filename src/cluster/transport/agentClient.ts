import { EventEmitter } from 'events';
import * as net from 'net';
import { AgentInfo, ControlEvent, ControlOp, ControlOps, ControlResponse, OpenAnswer, OpenRequest, PEER_PROTOCOL_VERSION, STRATA_VERSION } from '../protocol';
import { mismatchSeenByClient } from '../versionCheck';
import { onJsonLines, readLine, writeJsonLine } from './lines';
import { clientHandshake, PeerAuthError } from './peerHandshake';
import { ChannelOptions, SecureChannel } from './secureChannel';

// The client side of the peer agent: dial, authenticate, say what the connection is for.
// Used by the sidecar (control channel, rpc and server tunnels) and by the extension's
// "Show Cluster" (a short-lived control channel).

export interface AgentAddress {
  host: string;
  port: number;
  token: string;
  /** For messages, e.g. the peer's name. */
  label?: string;
}

export type AgentErrorCode = 'refused' | 'unreachable' | 'timeout' | 'open-refused' | 'closed' | 'version';

export class AgentConnectError extends Error {
  override readonly name = 'AgentConnectError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function describeAgent(a: AgentAddress): string {
  return a.label ? `peer "${a.label}" (${a.host}:${a.port})` : `${a.host}:${a.port}`;
}

export function dial(host: string, port: number, timeoutMs: number, label: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new AgentConnectError(
          'timeout',
          `${label} did not accept a connection within ${Math.round(timeoutMs / 1000)} s: check that the machine is on, on the network, and that no firewall drops port ${port}.`,
        ),
      );
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ECONNREFUSED') {
        reject(new AgentConnectError('refused', `Nothing listens on ${label}: start the agent there (\`strata-peer\`) or check the port.`));
      } else {
        reject(new AgentConnectError('unreachable', `${label} cannot be reached (${e.code ?? e.message}): check the address and the network.`));
      }
    });
  });
}

export interface OpenOptions extends ChannelOptions {
  timeoutMs?: number;
  /** Test seam: announce this peer protocol version instead of PEER_PROTOCOL_VERSION (tests of the version check). */
  protocolVersion?: number;
}

/** Dial + handshake + open. Rejects with AgentConnectError or PeerAuthError. */
export async function openAgentChannel(addr: AgentAddress, open: OpenRequest, opts: OpenOptions = {}): Promise<SecureChannel> {
  const label = describeAgent(addr);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const sock = await dial(addr.host, addr.port, timeoutMs, label);
  const ch = await clientHandshake(sock, addr.token, { ...opts, timeoutMs, label });
  try {
    const protocol = opts.protocolVersion ?? PEER_PROTOCOL_VERSION;
    writeJsonLine(ch, { ...open, heartbeatMs: ch.heartbeatMs, protocolVersion: protocol, strataVersion: STRATA_VERSION });
    const line = await readLine(ch, { timeoutMs: open.open === 'control' ? timeoutMs : Math.max(timeoutMs, 120_000), what: label });
    const ans = JSON.parse(line) as OpenAnswer;
    // Checked here too, not only by the agent: agents from before the check answer without one.
    const agent = { protocol: typeof ans.protocolVersion === 'number' ? ans.protocolVersion : 1, version: ans.agentVersion };
    const mismatch = mismatchSeenByClient(label, agent, { protocol, version: STRATA_VERSION });
    if (mismatch) throw new AgentConnectError('version', mismatch);
    if (!ans.ok) throw new AgentConnectError('open-refused', ans.error ?? `${label} refused the ${open.open} connection.`);
    // Never call the agent dead before it missed three of its heartbeats.
    const hb = Number(ans.heartbeatMs);
    const mine = opts.deadAfterMs ?? 10_000;
    if (hb > 0 && mine > 0 && mine < 3 * hb + 500) ch.setDeadAfter(3 * hb + 500);
    return ch;
  } catch (e) {
    ch.destroy();
    if (e instanceof AgentConnectError || e instanceof PeerAuthError) throw e;
    throw new AgentConnectError('closed', `${label} dropped the connection while opening ${open.open}: ${(e as Error).message}.`);
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

export interface ControlClientEvents {
  event: [ControlEvent];
  /** The channel ended; error says why when it was not our own close(). */
  close: [Error | undefined];
}

/** A control channel: typed requests, pushed events, and a close event with the reason. */
export class AgentControlClient extends EventEmitter<ControlClientEvents> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closedByUs = false;
  private closeError?: Error;
  readonly label: string;

  private constructor(
    readonly channel: SecureChannel,
    readonly address: AgentAddress,
  ) {
    super();
    this.label = describeAgent(address);
    onJsonLines(channel, (m) => this.onMessage(m));
    channel.on('error', (e) => {
      this.closeError ??= e;
    });
    channel.on('close', () => {
      const err = this.closedByUs ? undefined : peerGone(this.label, this.closeError, channel.remoteCloseReason);
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(err ?? new AgentConnectError('closed', `The connection to ${this.label} was closed.`));
      }
      this.pending.clear();
      this.emit('close', err);
    });
  }

  static async connect(addr: AgentAddress, opts: OpenOptions = {}): Promise<AgentControlClient> {
    const ch = await openAgentChannel(addr, { open: 'control' }, opts);
    return new AgentControlClient(ch, addr);
  }

  get closed(): boolean {
    return this.channel.destroyed;
  }

  request<O extends ControlOp>(op: O, params: ControlOps[O][0], timeoutMs = 15_000): Promise<ControlOps[O][1]> {
    if (this.channel.destroyed) return Promise.reject(new AgentConnectError('closed', `The connection to ${this.label} is closed.`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new AgentConnectError('timeout', `${this.label} did not answer "${op}" within ${Math.round(timeoutMs / 1000)} s.`));
        }, timeoutMs);
      }
      this.pending.set(id, p);
      writeJsonLine(this.channel, { id, op, params });
    });
  }

  info(refresh = false): Promise<AgentInfo> {
    return this.request('info', { refresh }, refresh ? 30_000 : 15_000);
  }

  /** Round trip through the channel, ms. */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.request('ping', { t: Date.now() }, 5000);
    return performance.now() - t0;
  }

  close(): void {
    this.closedByUs = true;
    this.channel.end();
    setTimeout(() => this.channel.destroy(), 1000).unref();
  }

  private onMessage(m: unknown): void {
    const msg = m as Partial<ControlResponse & ControlEvent>;
    if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      const r = msg as ControlResponse;
      if (r.ok) p.resolve(r.result);
      else p.reject(new Error(r.error));
    } else if (typeof msg.event === 'string') {
      this.emit('event', msg as ControlEvent);
    }
  }
}

/** The one sentence for a peer that went away. */
export function peerGone(label: string, err?: Error, reason?: string): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (reason) return new AgentConnectError('closed', `${label} closed the connection: ${reason}`);
  if (code === 'EPEERDEAD') return new AgentConnectError('timeout', `${label} stopped answering (no heartbeat): the machine is off, asleep or unplugged.`);
  if (code === 'ECONNCUT')
    return new AgentConnectError(
      'closed',
      `${label} was cut off without closing the connection (the agent died, or something on the network cut it): check that strata-peer still runs there.`,
    );
  if (code === 'EBADRECORD') return new AgentConnectError('closed', `${label} sent data that failed authentication; the connection was dropped.`);
  return new AgentConnectError('closed', `${label} dropped the connection${code ? ` (${code})` : ''}: the agent stopped or the machine went away.`);
}
