import * as crypto from 'crypto';
import * as http from 'http';
import type { Socket } from 'net';
import { RawData, WebSocket, WebSocketServer } from 'ws';
import {
  CloseCode,
  DaemonFrame,
  decodeClientFrame,
  encodeFrame,
  ErrorInfo,
  EventName,
  Events,
  HelloFrame,
  isKnownMethod,
  MAX_FRAME_BYTES,
  Method,
  ProtocolError,
  SidecarStatus,
} from '../core/protocol';
import { SupervisorError } from './failures';

// The daemon's WebSocket endpoint. Loopback only, and nothing is said to a connection before it
// proves it holds the token from the 0600 lock file: a wrong token, a missing token and a
// connection that stays silent all get the same close code and the same empty reason, so a
// prober learns nothing (not even which of the three it did wrong). The refusal is logged.
//
// Any local user can open sockets to it, so until a socket has sent a good hello it is "pending":
// it has helloTimeoutMs from the TCP accept (not from the WebSocket upgrade, which a silent
// socket never does), after which it is closed, and at most maxPending of them are kept — a new
// one pushes the oldest out, so that a flood of silent sockets neither exhausts the daemon's file
// descriptors nor keeps a window (whose hello follows its connect within milliseconds) out.

export interface ClientConn {
  readonly id: number;
  readonly name: string;
  readonly pid?: number;
  wantsLogs: boolean;
}

export interface ControlHandler {
  status(): SidecarStatus;
  request(conn: ClientConn, method: Method, params: Record<string, unknown>): Promise<unknown>;
  clientsChanged(count: number): void;
  /** A client of another protocol version asked this daemon to make way. */
  retire(mode: 'when-idle' | 'now'): void;
}

export interface ControlServerOptions {
  token: string;
  protocolVersion: number;
  helloTimeoutMs: number;
  /** Sockets without a good hello yet, at most. */
  maxPending: number;
  log: (msg: string) => void;
  handler: ControlHandler;
}

interface Conn extends ClientConn {
  ws: WebSocket;
}

interface Pending {
  timer: NodeJS.Timeout;
  /** Set once upgraded: closes it the way every refusal does. */
  refuse?: (why: string) => void;
}

/** How long a refused WebSocket gets to answer the close frame before its socket is cut. */
const CLOSE_GRACE_MS = 1000;
/** Drops of sockets that never said hello are logged at most this often (a flood must not flood the log). */
const DROP_LOG_EVERY_MS = 10_000;

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

export class ControlServer {
  private server?: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
  private readonly clients = new Set<Conn>();
  /** In accept order: the first one is the oldest. */
  private readonly pending = new Map<Socket, Pending>();
  private readonly tokenDigest: Buffer;
  private nextId = 1;
  private shuttingDown = false;
  private dropped = { count: 0, loggedAt: 0 };

  constructor(private readonly opts: ControlServerOptions) {
    this.tokenDigest = digest(opts.token);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      // What ws does with a port of its own, plus a hand on every socket from its accept on.
      const server = http.createServer((_req, res) => {
        res.writeHead(426, { connection: 'close' });
        res.end();
      });
      this.server = server;
      server.on('connection', (sock: Socket) => this.admit(sock));
      server.on('upgrade', (req: http.IncomingMessage, sock: Socket, head: Buffer) => {
        if (!this.pending.has(sock)) return void sock.destroy();
        this.wss.handleUpgrade(req, sock, head, (ws) => this.onConnection(ws, req, sock));
      });
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        server.on('error', (e) => this.opts.log(`control server error: ${e.message}`));
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : 0);
      });
    });
  }

  broadcast<E extends EventName>(event: E, data: Events[E], filter: (c: ClientConn) => boolean = () => true): void {
    const text = encodeFrame({ type: 'event', event, data } as DaemonFrame);
    for (const c of this.clients) if (filter(c)) sendText(c.ws, text);
  }

  /**
   * Closes every client connection, and from now on tells each window that connects (with the
   * token) that this daemon is shutting down: it retries until the next daemon runs.
   */
  shutDown(): void {
    this.shuttingDown = true;
    for (const c of this.clients) c.ws.close(CloseCode.ShuttingDown, 'shutting down');
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    for (const c of this.clients) c.ws.terminate();
    for (const sock of [...this.pending.keys()]) this.drop(sock);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }

  /** A new socket: pending until its hello, with a deadline; the oldest goes if too many wait. */
  private admit(sock: Socket): void {
    if (this.pending.size >= this.opts.maxPending) {
      const [oldest] = this.pending.keys();
      this.noteDrop(`more than ${this.opts.maxPending} connections waited for their hello; the oldest went`);
      this.drop(oldest);
    }
    const p: Pending = {
      timer: setTimeout(() => {
        if (!p.refuse) {
          this.noteDrop(`no WebSocket upgrade within ${this.opts.helloTimeoutMs} ms`);
          return this.drop(sock);
        }
        p.refuse('no hello in time');
        p.timer = setTimeout(() => this.drop(sock), CLOSE_GRACE_MS);
      }, this.opts.helloTimeoutMs),
    };
    this.pending.set(sock, p);
    sock.once('close', () => this.forget(sock));
  }

  private forget(sock: Socket): void {
    clearTimeout(this.pending.get(sock)?.timer);
    this.pending.delete(sock);
  }

  private drop(sock: Socket): void {
    this.forget(sock);
    sock.destroy();
  }

  private noteDrop(why: string): void {
    this.dropped.count++;
    const now = Date.now();
    if (now - this.dropped.loggedAt < DROP_LOG_EVERY_MS) return;
    this.opts.log(`dropped ${this.dropped.count} control connection(s) that sent no hello (${why})`);
    this.dropped = { count: 0, loggedAt: now };
  }

  private tokenOk(t: string | undefined): boolean {
    // Comparing fixed-size digests keeps the comparison constant-time whatever the input length.
    return typeof t === 'string' && t.length > 0 && crypto.timingSafeEqual(digest(t), this.tokenDigest);
  }

  private onConnection(ws: WebSocket, req: http.IncomingMessage, sock: Socket): void {
    const remote = `${sock.remoteAddress}:${sock.remotePort}`;
    ws.on('error', () => undefined);
    let refused = false;
    const refuse = (why: string) => {
      if (refused) return;
      refused = true;
      this.opts.log(`refused control connection from ${remote}: ${why}`);
      ws.close(CloseCode.Unauthorized);
    };
    const pending = this.pending.get(sock);
    if (!pending) return void ws.terminate();
    pending.refuse = refuse;
    // Browsers always send Origin; the extension host never does. A web page must not even try.
    if (req.headers.origin !== undefined) return refuse('it came from a browser (Origin header)');
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && !this.tokenOk(bearer)) return refuse('wrong token in the Authorization header');
    const headerOk = bearer !== undefined;
    // A refused socket stays pending (it counts, and its deadline cuts it) until it goes.
    ws.once('message', (data, isBinary) => {
      let hello: HelloFrame;
      try {
        const f = isBinary ? undefined : decodeClientFrame(rawToString(data));
        if (!f || f.type !== 'hello') return refuse('first frame was not a hello');
        hello = f;
      } catch {
        return refuse('first frame did not parse');
      }
      if (!headerOk && !this.tokenOk(hello.token)) return refuse(hello.token ? 'wrong token' : 'no token');
      if (this.shuttingDown) {
        ws.close(CloseCode.ShuttingDown, 'shutting down');
        return;
      }
      if (hello.protocolVersion !== this.opts.protocolVersion) {
        this.opts.log(
          `client ${hello.client?.name ?? remote} speaks protocol ${hello.protocolVersion}, this daemon ${this.opts.protocolVersion}${hello.retire ? `; asked to retire (${hello.retire})` : ''}`,
        );
        if (hello.retire) this.opts.handler.retire(hello.retire);
        ws.close(CloseCode.IncompatibleProtocol, `protocol ${this.opts.protocolVersion}`);
        return;
      }
      this.forget(sock);
      const conn: Conn = { id: this.nextId++, name: hello.client?.name ?? 'client', pid: hello.client?.pid, wantsLogs: false, ws };
      this.clients.add(conn);
      ws.on('close', () => {
        if (this.clients.delete(conn)) {
          this.opts.log(`client ${conn.id} (${conn.name}${conn.pid ? ` pid ${conn.pid}` : ''}) left; ${this.clients.size} connected`);
          this.opts.handler.clientsChanged(this.clients.size);
        }
      });
      ws.on('message', (d, bin) => this.onFrame(conn, d, bin));
      this.opts.log(`client ${conn.id} (${conn.name}${conn.pid ? ` pid ${conn.pid}` : ''}) connected; ${this.clients.size} connected`);
      this.opts.handler.clientsChanged(this.clients.size);
      sendText(ws, encodeFrame({ type: 'welcome', protocolVersion: this.opts.protocolVersion, status: this.opts.handler.status() }));
    });
  }

  private onFrame(conn: Conn, data: RawData, isBinary: boolean): void {
    let frame;
    try {
      if (isBinary) throw new ProtocolError('binary frame');
      frame = decodeClientFrame(rawToString(data));
    } catch (e) {
      this.opts.log(`closing client ${conn.id}: ${(e as Error).message}`);
      conn.ws.close(CloseCode.ProtocolViolation, 'protocol violation');
      return;
    }
    if (frame.type !== 'req') return; // a repeated hello changes nothing
    const { id, method } = frame;
    const reply = (f: DaemonFrame) => sendText(conn.ws, encodeFrame(f));
    if (!isKnownMethod(method)) {
      reply({
        type: 'res',
        id,
        ok: false,
        error: { code: 'unknown-method', message: `This sidecar does not know "${String(method)}": update Strata in every window.` },
      });
      return;
    }
    this.opts.handler.request(conn, method, frame.params as Record<string, unknown>).then(
      (result) => reply({ type: 'res', id, ok: true, result: result ?? {} }),
      (err: unknown) => reply({ type: 'res', id, ok: false, error: toErrorInfo(err) }),
    );
  }
}

export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof SupervisorError) return err.info;
  if (err instanceof ProtocolError) return { code: 'bad-request', message: `Bad request: ${err.message}.` };
  return { code: 'internal', message: `Internal sidecar error: ${(err as Error)?.message ?? String(err)}; see the sidecar log.` };
}

function sendText(ws: WebSocket, text: string): void {
  if (ws.readyState === WebSocket.OPEN) ws.send(text);
}

function rawToString(d: RawData): string {
  if (Array.isArray(d)) return Buffer.concat(d).toString('utf8');
  if (d instanceof ArrayBuffer) return Buffer.from(d).toString('utf8');
  return d.toString('utf8');
}
