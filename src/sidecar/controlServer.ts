import * as crypto from 'crypto';
import type { IncomingMessage } from 'http';
import { RawData, WebSocket, WebSocketServer } from 'ws';
import {
  CloseCode, DaemonFrame, decodeClientFrame, encodeFrame, ErrorInfo, EventName, Events, HelloFrame,
  isKnownMethod, MAX_FRAME_BYTES, Method, ProtocolError, SidecarStatus,
} from '../core/protocol';
import { SupervisorError } from './failures';

// The daemon's WebSocket endpoint. Loopback only, and nothing is said to a connection before it
// proves it holds the token from the 0600 lock file: a wrong token, a missing token and a
// connection that stays silent all get the same close code and the same empty reason, so a
// prober learns nothing (not even which of the three it did wrong). The refusal is logged.

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
  log: (msg: string) => void;
  handler: ControlHandler;
}

interface Conn extends ClientConn {
  ws: WebSocket;
}

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

export class ControlServer {
  private wss?: WebSocketServer;
  private readonly clients = new Set<Conn>();
  private readonly tokenDigest: Buffer;
  private nextId = 1;

  constructor(private readonly opts: ControlServerOptions) {
    this.tokenDigest = digest(opts.token);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
      this.wss = wss;
      wss.once('error', reject);
      wss.on('listening', () => {
        wss.off('error', reject);
        wss.on('error', (e) => this.opts.log(`control server error: ${e.message}`));
        const addr = wss.address();
        resolve(typeof addr === 'object' && addr ? addr.port : 0);
      });
      wss.on('connection', (ws, req) => this.onConnection(ws, req));
    });
  }

  broadcast<E extends EventName>(event: E, data: Events[E], filter: (c: ClientConn) => boolean = () => true): void {
    const text = encodeFrame({ type: 'event', event, data } as DaemonFrame);
    for (const c of this.clients) if (filter(c)) sendText(c.ws, text);
  }

  /** Closes every client connection (they will reconnect to whoever runs next). */
  closeAll(code: number, reason: string): void {
    for (const c of this.clients) c.ws.close(code, reason);
  }

  async close(): Promise<void> {
    const wss = this.wss;
    if (!wss) return;
    for (const c of this.clients) c.ws.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  }

  private tokenOk(t: string | undefined): boolean {
    // Comparing fixed-size digests keeps the comparison constant-time whatever the input length.
    return typeof t === 'string' && t.length > 0 && crypto.timingSafeEqual(digest(t), this.tokenDigest);
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    ws.on('error', () => undefined);
    const refuse = (why: string) => {
      this.opts.log(`refused control connection from ${remote}: ${why}`);
      ws.close(CloseCode.Unauthorized);
    };
    // Browsers always send Origin; the extension host never does. A web page must not even try.
    if (req.headers.origin !== undefined) return refuse('it came from a browser (Origin header)');
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && !this.tokenOk(bearer)) return refuse('wrong token in the Authorization header');
    const headerOk = bearer !== undefined;
    const timer = setTimeout(() => refuse('no hello in time'), this.opts.helloTimeoutMs);
    ws.once('close', () => clearTimeout(timer));
    ws.once('message', (data, isBinary) => {
      clearTimeout(timer);
      let hello: HelloFrame;
      try {
        const f = isBinary ? undefined : decodeClientFrame(rawToString(data));
        if (!f || f.type !== 'hello') return refuse('first frame was not a hello');
        hello = f;
      } catch {
        return refuse('first frame did not parse');
      }
      if (!headerOk && !this.tokenOk(hello.token)) return refuse(hello.token ? 'wrong token' : 'no token');
      if (hello.protocolVersion !== this.opts.protocolVersion) {
        this.opts.log(`client ${hello.client?.name ?? remote} speaks protocol ${hello.protocolVersion}, this daemon ${this.opts.protocolVersion}${hello.retire ? `; asked to retire (${hello.retire})` : ''}`);
        if (hello.retire) this.opts.handler.retire(hello.retire);
        ws.close(CloseCode.IncompatibleProtocol, `protocol ${this.opts.protocolVersion}`);
        return;
      }
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
      reply({ type: 'res', id, ok: false, error: { code: 'unknown-method', message: `This sidecar does not know "${String(method)}": update Strata in every window.` } });
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
