import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { AgentInfo, ControlRequest, OpenAnswer, OpenRequest, PEER_PROTOCOL_VERSION, STRATA_VERSION, TransportMode } from '../protocol';
import { splice, zeroRange } from '../net/splice';
import { RPC_CONN_CAPS_SIZE } from '../rpc/protocol';
import { FailureRateGate } from '../transport/authGate';
import { onJsonLines, readLine, writeJsonLine } from '../transport/lines';
import { AuthGate, NonceCache, PeerAuthError, serverHandshake, tokenKey } from '../transport/peerHandshake';
import { SecureChannel } from '../transport/secureChannel';
import { mismatchSeenByAgent } from '../versionCheck';
import { findPeerLlamaServer, findRpcServer } from './binaries';
import { addressKey, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_PER_ADDRESS_PENDING, DEFAULT_TOTAL_PENDING, PendingLogins } from './pendingLogins';
import { PlacementManager } from './placement';
import { RpcServerManager } from './rpcServer';

// The peer agent (`strata-peer`): one TCP port, every connection authenticated (secureChannel),
// then one of: a control channel (devices, memory, start/stop rpc-server, placement), a tunnel
// to rpc-server, or a tunnel to a placed llama-server. rpc-server itself listens on loopback
// unless the owner allowed direct mode.

export interface AgentOptions {
  host: string;
  port: number;
  token: string;
  stateDir: string;
  /** ggml-rpc-server path; default: found like the sidecar finds llama-server. */
  rpcServer?: string;
  llamaServer?: string;
  threads?: number;
  devices?: string[];
  cacheDir?: string;
  /** Allow direct mode, rpc-server listening on this address. */
  directHost?: string;
  directPort?: number;
  /** Default 10 minutes. */
  idleStopMs?: number;
  modelsDir?: string;
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** Failed logins per address per minute before a block. Default 5. */
  maxFailures?: number;
  blockMs?: number;
  /** A connection not logged in within this is dropped and counts as a failed login. */
  handshakeTimeoutMs?: number;
  /** Connections still logging in at once from one address (IPv6: one /64). */
  maxPendingPerAddress?: number;
  /** ... from all addresses together (see pendingLogins.ts for who gets displaced at the cap). */
  maxPendingTotal?: number;
  /** Test seam: announce (and compare against) this peer protocol version instead of PEER_PROTOCOL_VERSION. */
  protocolVersion?: number;
  log?: (m: string) => void;
}

export class PeerAgent {
  private readonly key: Buffer;
  private readonly server: net.Server;
  private readonly gate: FailureRateGate;
  private readonly nonces = new NonceCache();
  readonly rpc: RpcServerManager;
  readonly placement: PlacementManager;
  private readonly startedAt = Date.now();
  private readonly log: (m: string) => void;
  private readonly sockets = new Set<net.Socket>();
  private readonly pending: PendingLogins;
  /** When each address last had a connection dropped for holding too many logins (log once a minute). */
  private readonly droppedLogged = new Map<string, number>();
  private readonly protocolVersion: number;

  constructor(private readonly o: AgentOptions) {
    this.log = o.log ?? ((m) => process.stderr.write(`${new Date().toISOString()} ${m}\n`));
    this.key = tokenKey(o.token);
    this.pending = new PendingLogins(o.maxPendingTotal ?? DEFAULT_TOTAL_PENDING);
    this.protocolVersion = o.protocolVersion ?? PEER_PROTOCOL_VERSION;
    this.gate = new FailureRateGate({
      maxFailures: o.maxFailures,
      blockMs: o.blockMs,
      onBlock: (a, ms, why) => this.log(`auth: blocking ${a === '*' ? 'all unknown addresses' : a} for ${Math.round(ms / 1000)} s (${why})`),
    });
    let binary: string | undefined;
    let binaryError: string | undefined;
    try {
      binary = findRpcServer({ explicit: o.rpcServer }).path;
    } catch (e) {
      binaryError = (e as Error).message;
      this.log(binaryError);
    }
    this.rpc = new RpcServerManager({
      binary,
      binaryError,
      threads: o.threads,
      devices: o.devices,
      cacheDir: o.cacheDir,
      directHost: o.directHost,
      directPort: o.directPort ?? 50052,
      idleStopMs: o.idleStopMs ?? 10 * 60_000,
      logDir: o.stateDir,
      log: this.log,
    });
    this.placement = new PlacementManager({
      modelsDir: o.modelsDir,
      findServer: () => findPeerLlamaServer({ explicit: o.llamaServer, rpcServerPath: this.rpc.state().binary }).path,
      logDir: o.stateDir,
      log: this.log,
    });
    this.server = net.createServer((s) => this.onConnection(s));
    this.server.maxConnections = 256;
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        const a = this.server.address() as net.AddressInfo;
        this.log(
          `strata-peer ${STRATA_VERSION} (peer protocol ${this.protocolVersion}) listening on ${a.address}:${a.port} (rpc-server: ${this.rpc.state().binary}; direct mode ${this.o.directHost ? `allowed on ${this.o.directHost}:${this.o.directPort ?? 50052}` : 'off'}; placement ${this.o.modelsDir ? `from ${this.o.modelsDir}` : 'off'})`,
        );
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => {
      this.server.close(() => r());
      for (const s of this.sockets) s.destroy();
    });
    await Promise.all([this.rpc.close(), this.placement.close()]);
  }

  async info(refresh: boolean): Promise<AgentInfo> {
    if (refresh || (this.rpc.deviceList().length === 0 && !this.rpc.state().error)) {
      try {
        await this.rpc.refresh();
      } catch (e) {
        this.log(`could not probe rpc-server: ${(e as Error).message}`);
      }
    }
    return {
      agent: {
        version: STRATA_VERSION,
        protocolVersion: this.protocolVersion,
        hostname: os.hostname(),
        platform: `${process.platform}-${process.arch}`,
        pid: process.pid,
        uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
        directAllowed: !!this.o.directHost,
        placementAllowed: this.placement.allowed,
      },
      rpc: this.rpc.state(),
      devices: this.rpc.deviceList(),
      host: { totalMemBytes: os.totalmem(), freeMemBytes: os.freemem(), cpus: os.cpus().length },
      servers: this.placement.list(),
      ...(this.placement.allowed ? { models: this.placement.models() } : {}),
    };
  }

  private async onConnection(sock: net.Socket): Promise<void> {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    const from = `${sock.remoteAddress}:${sock.remotePort}`;
    const ch = await this.login(sock, from);
    if (!ch) return;
    ch.on('error', () => undefined);
    let open: OpenRequest;
    try {
      open = JSON.parse(await readLine(ch, { timeoutMs: 10_000, what: from })) as OpenRequest;
    } catch (e) {
      this.log(`${from}: no valid open request (${(e as Error).message})`);
      ch.destroy();
      return;
    }
    // Never call a client dead before it missed three of its own heartbeats.
    const hb = Number(open.heartbeatMs);
    const mine = this.o.deadAfterMs ?? 10_000;
    if (hb > 0 && mine > 0 && mine < 3 * hb + 500) ch.setDeadAfter(3 * hb + 500);
    const theirs = typeof open.protocolVersion === 'number' ? open.protocolVersion : 1;
    const mismatch = mismatchSeenByAgent(from, { protocol: theirs, version: open.strataVersion }, { protocol: this.protocolVersion, version: STRATA_VERSION });
    if (mismatch) {
      this.log(mismatch);
      this.answer(ch, { ok: false, code: 'version', error: mismatch });
      ch.end();
      return;
    }
    switch (open.open) {
      case 'control':
        this.answer(ch, { ok: true, heartbeatMs: ch.heartbeatMs });
        this.serveControl(ch, from);
        return;
      case 'rpc':
        await this.serveRpcTunnel(ch, from);
        return;
      case 'server':
        await this.serveServerTunnel(ch, from, String(open.role));
        return;
      default:
        this.answer(ch, { ok: false, error: `Unknown connection kind ${JSON.stringify((open as { open: unknown }).open)}: update Strata on both machines.` });
        ch.end();
    }
  }

  /**
   * The handshake under the pre-login limits (pendingLogins.ts): a slot for this address, a
   * deadline for the whole login, and every way of not logging in counted as a failure, so that
   * silent sockets meet the same rate limit as wrong tokens. Resolves undefined when refused.
   */
  private async login(sock: net.Socket, from: string): Promise<SecureChannel | undefined> {
    const key = addressKey(sock.remoteAddress);
    const blocked = this.gate.admit(key) !== undefined;
    // A blocked address gets one login at a time: enough to be told for how long, too few to matter.
    // One displaced by a newcomer (pendingLogins.ts) did nothing wrong itself: not counted, not logged.
    let displaced = false;
    const release = this.pending.take(key, blocked ? 1 : (this.o.maxPendingPerAddress ?? DEFAULT_PER_ADDRESS_PENDING), () => {
      displaced = true;
      sock.destroy();
    });
    if (!release) {
      this.noteDropped(key);
      sock.destroy();
      return undefined;
    }
    const timeoutMs = this.o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      sock.destroy();
    }, timeoutMs);
    let counted = false;
    // Keyed like the slots; a blocked address's failures are not counted again (its block would only grow).
    const gate: AuthGate = {
      admit: () => this.gate.admit(key),
      failed: (_a, why) => {
        counted = true;
        if (!blocked) this.gate.failed(key, why);
      },
      succeeded: () => {
        counted = true;
        this.gate.succeeded(key);
      },
    };
    try {
      return await serverHandshake(sock, this.key, {
        gate,
        seenNonces: this.nonces,
        heartbeatMs: this.o.heartbeatMs,
        deadAfterMs: this.o.deadAfterMs,
        label: from,
        timeoutMs,
      });
    } catch (e) {
      const err = e as Error;
      const code = err instanceof PeerAuthError ? err.code : undefined;
      if (displaced || blocked) return undefined;
      if (!counted && code !== 'rate-limited' && code !== 'version') this.gate.failed(key, 'timeout');
      const why = timedOut ? `not logged in within ${timeoutMs} ms` : err instanceof PeerAuthError ? err.message.replace(`${from} `, '') : err.message;
      this.log(`auth: refused ${from}: ${why}`);
      return undefined;
    } finally {
      clearTimeout(deadline);
      release();
    }
  }

  private noteDropped(key: string): void {
    const now = Date.now();
    if (now - (this.droppedLogged.get(key) ?? 0) < 60_000) return;
    if (this.droppedLogged.size > 1000) this.droppedLogged.clear();
    this.droppedLogged.set(key, now);
    this.log(`auth: dropping new connections from ${key} while ${this.pending.count(key)} of its connections are still logging in`);
  }

  /** Every answer to an open request names this agent's versions (the client compares them too). */
  private answer(ch: SecureChannel, a: OpenAnswer): void {
    writeJsonLine(ch, { ...a, protocolVersion: this.protocolVersion, agentVersion: STRATA_VERSION });
  }

  private serveControl(ch: SecureChannel, from: string): void {
    let releaseLease: (() => void) | undefined;
    ch.on('close', () => releaseLease?.());
    const unsubscribe: Array<() => void> = [];
    ch.on('close', () => unsubscribe.forEach((f) => f()));
    onJsonLines(ch, (m) => {
      const req = m as ControlRequest;
      void (async () => {
        try {
          const result = await this.handle(req, () => {
            releaseLease ??= this.rpc.lease();
          });
          writeJsonLine(ch, { id: req.id, ok: true, result });
        } catch (e) {
          writeJsonLine(ch, { id: req.id, ok: false, error: (e as Error).message });
        }
      })();
    });
    this.log(`${from}: control channel open`);
  }

  private async handle(req: ControlRequest, takeLease: () => void): Promise<unknown> {
    const p = req.params ?? {};
    switch (req.op) {
      case 'info':
        return this.info(p.refresh === true);
      case 'ping':
        return { t: p.t, agentTime: Date.now() };
      case 'rpc.start': {
        const mode = p.mode as TransportMode;
        if (mode !== 'tunnel' && mode !== 'direct') throw new Error('mode must be "tunnel" or "direct"');
        takeLease();
        return this.rpc.ensure(mode);
      }
      case 'rpc.stop':
        await this.rpc.stop('asked by the sidecar');
        return this.rpc.state();
      case 'server.start':
        return this.placement.start(String(p.role), String(p.model), Array.isArray(p.args) ? p.args.map(String) : []);
      case 'server.stop':
        return this.placement.stop(String(p.role));
      default:
        throw new Error(`Unknown request ${JSON.stringify(req.op)}: update Strata on both machines.`);
    }
  }

  private async serveRpcTunnel(ch: SecureChannel, from: string): Promise<void> {
    let lease: Awaited<ReturnType<RpcServerManager['acquireTunnel']>>;
    try {
      lease = await this.rpc.acquireTunnel();
    } catch (e) {
      this.answer(ch, { ok: false, error: `rpc-server on ${os.hostname()} could not start: ${(e as Error).message}` });
      ch.end();
      return;
    }
    const upstream = await connectLocal(lease.host, lease.port).catch((e: Error) => e);
    if (upstream instanceof Error) {
      lease.release();
      this.answer(ch, { ok: false, error: `rpc-server on ${os.hostname()} refused the connection: ${upstream.message}` });
      ch.end();
      return;
    }
    this.answer(ch, { ok: true, heartbeatMs: ch.heartbeatMs });
    this.log(`${from}: rpc tunnel open`);
    // HELLO request: cmd u8 + size u64 + caps[24]; response: size u64 + version u8×4 + caps[24].
    // Zero caps both ways keep both ends on plain TCP, i.e. inside the tunnel.
    splice(
      ch,
      upstream,
      (err) => {
        lease.release();
        this.log(`${from}: rpc tunnel closed${err ? ` (${(err as NodeJS.ErrnoException).code ?? err.message})` : ''}`);
      },
      { aToB: zeroRange(9, 9 + RPC_CONN_CAPS_SIZE), bToA: zeroRange(12, 12 + RPC_CONN_CAPS_SIZE) },
    );
  }

  private async serveServerTunnel(ch: SecureChannel, from: string, role: string): Promise<void> {
    const port = this.placement.port(role);
    if (port === undefined) {
      this.answer(ch, { ok: false, error: `No ${role} server is running on ${os.hostname()}.` });
      ch.end();
      return;
    }
    const upstream = await connectLocal('127.0.0.1', port).catch((e: Error) => e);
    if (upstream instanceof Error) {
      this.answer(ch, { ok: false, error: `The ${role} server on ${os.hostname()} refused the connection: ${upstream.message}` });
      ch.end();
      return;
    }
    this.answer(ch, { ok: true, heartbeatMs: ch.heartbeatMs });
    splice(ch, upstream, () => undefined);
    void from;
  }
}

function connectLocal(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => {
      s.off('error', reject);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export function defaultAgentStateDir(): string {
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'strata-peer');
}
