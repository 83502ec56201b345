import * as crypto from 'crypto';
import * as net from 'net';
import { ByteQueue } from '../net/byteQueue';
import { ChannelOptions, SecureChannel, SessionKeys } from './secureChannel';

// The login in front of every peer connection: a mutual HMAC challenge-response over the shared
// token that leaves both sides with fresh session keys for a SecureChannel. Apart from the
// channel because it runs once per connection and is where the agent defends itself (rate
// limits, replayed nonces, a delay after a wrong proof), while the channel is the tunnel's
// per-byte hot path. Why not TLS, and the threat model: secureChannel.ts, docs/cluster.md "Security".
//
// Handshake (both nonces fresh per connection, so nothing recorded can be replayed):
//   C→S  "SPR1" | ver u8 | cN[32]
//   S→C  "SPR1" | ver u8 | status u8 | retryAfterS u32 | sN[32]       status 0 ok, 2 rate limited
//   C→S  cMac = HMAC(K, "strata-peer/1 client" | cN | sN)                      32 bytes
//   S→C  status u8 | sMac = HMAC(K, "strata-peer/1 server" | cN | sN)          status 0 ok, 1 refused
// K = SHA-256("strata-peer/1 token" | token). The server compares in constant time; the client
// checks sMac, so a machine that does not know the token cannot pose as the agent either.
// Session keys: HKDF-SHA256(K, salt cN|sN) → one key and nonce salt per direction.

/** The handshake's and the record format's version (2: a clean end is a CLOSE record, see secureChannel.ts). */
export const PEER_WIRE_VERSION = 2;
const MAGIC = Buffer.from('SPR1', 'ascii');
const NONCE_BYTES = 32;
const MAC_BYTES = 32;

export type AuthErrorCode = 'bad-token' | 'rate-limited' | 'not-a-peer' | 'agent-unverified' | 'version' | 'timeout' | 'closed';

/** A handshake failure; `message` is one sentence for the user. */
export class PeerAuthError extends Error {
  override readonly name = 'PeerAuthError';
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export function tokenKey(token: string): Buffer {
  return crypto.createHash('sha256').update('strata-peer/1 token\0').update(token, 'utf8').digest();
}

/** A fresh random token: 32 bytes, base64url, prefixed so that it is recognizable in a config. */
export function newToken(): string {
  return `sp1_${crypto.randomBytes(32).toString('base64url')}`;
}

function mac(key: Buffer, label: string, cN: Buffer, sN: Buffer): Buffer {
  return crypto.createHmac('sha256', key).update(label).update(cN).update(sN).digest();
}

function deriveKeys(key: Buffer, cN: Buffer, sN: Buffer, side: 'client' | 'server'): SessionKeys {
  const okm = Buffer.from(crypto.hkdfSync('sha256', key, Buffer.concat([cN, sN]), 'strata-peer/1 session', 72));
  const c2s = { key: okm.subarray(0, 32), salt: okm.subarray(64, 68) };
  const s2c = { key: okm.subarray(32, 64), salt: okm.subarray(68, 72) };
  return side === 'client'
    ? { sendKey: c2s.key, sendSalt: c2s.salt, recvKey: s2c.key, recvSalt: s2c.salt }
    : { sendKey: s2c.key, sendSalt: s2c.salt, recvKey: c2s.key, recvSalt: c2s.salt };
}

export interface ClientHandshakeOptions extends ChannelOptions {
  timeoutMs?: number;
}

/** Runs the client side on a connected socket; resolves with the channel or rejects with PeerAuthError. */
export async function clientHandshake(sock: net.Socket, token: string, opts: ClientHandshakeOptions = {}): Promise<SecureChannel> {
  const label = opts.label ?? `${sock.remoteAddress}:${sock.remotePort}`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const key = tokenKey(token);
  const cN = crypto.randomBytes(NONCE_BYTES);
  const r = new HandshakeReader(sock, label, timeoutMs);
  try {
    sock.setNoDelay(true);
    sock.write(Buffer.concat([MAGIC, Buffer.of(PEER_WIRE_VERSION), cN]));
    const hello = await r.read(4 + 1 + 1 + 4 + NONCE_BYTES, 'the Strata peer greeting');
    if (!hello.subarray(0, 4).equals(MAGIC))
      throw new PeerAuthError('not-a-peer', `${label} is not a Strata peer agent (strata-peer): check the host and port.`);
    if (hello[4] !== PEER_WIRE_VERSION)
      throw new PeerAuthError(
        'version',
        `The agent at ${label} speaks peer protocol ${hello[4]}, this Strata ${PEER_WIRE_VERSION}: install the same Strata version on both machines.`,
      );
    if (hello[5] === 2) {
      const s = hello.readUInt32BE(6);
      throw new PeerAuthError(
        'rate-limited',
        `The agent at ${label} refuses new connections for ${s} s after too many failed logins from this address: wait, then check the token.`,
        s * 1000,
      );
    }
    const sN = hello.subarray(10, 10 + NONCE_BYTES);
    sock.write(mac(key, 'strata-peer/1 client\0', cN, sN));
    const res = await r.read(
      1 + MAC_BYTES,
      'the login answer',
      () => new PeerAuthError('bad-token', `The agent at ${label} refused the token: copy it again from \`strata-peer token\` on that machine.`),
    );
    if (res[0] !== 0)
      throw new PeerAuthError('bad-token', `The agent at ${label} refused the token: copy it again from \`strata-peer token\` on that machine.`);
    const expected = mac(key, 'strata-peer/1 server\0', cN, sN);
    if (!crypto.timingSafeEqual(res.subarray(1), expected)) {
      throw new PeerAuthError('agent-unverified', `${label} accepted the login but could not prove it knows the token: it is not your agent; do not use it.`);
    }
    return new SecureChannel(sock, deriveKeys(key, cN, sN, 'client'), r.detach(), { ...opts, label });
  } catch (e) {
    r.detach();
    sock.destroy();
    throw e;
  }
}

export interface AuthGate {
  /** Before the greeting: undefined to proceed, or how long this address must wait. */
  admit(address: string): number | undefined;
  failed(address: string, why: 'bad-token' | 'replay' | 'timeout' | 'garbage'): void;
  succeeded(address: string): void;
}

export interface ServerHandshakeOptions extends ChannelOptions {
  timeoutMs?: number;
  gate?: AuthGate;
  /** Seen client nonces (replay detection across connections); checked and extended here. */
  seenNonces?: NonceCache;
  /** Delay before answering a wrong proof (slows online guessing). Default 250 ms. */
  failureDelayMs?: number;
}

/** Runs the agent side; resolves with the channel or rejects (and closes) with PeerAuthError. */
export async function serverHandshake(sock: net.Socket, key: Buffer, opts: ServerHandshakeOptions = {}): Promise<SecureChannel> {
  const address = sock.remoteAddress ?? '?';
  const label = opts.label ?? `${address}:${sock.remotePort}`;
  const r = new HandshakeReader(sock, label, opts.timeoutMs ?? 5000);
  const retryMs = opts.gate?.admit(address);
  try {
    sock.setNoDelay(true);
    const hello = await r.read(4 + 1 + NONCE_BYTES, 'a greeting', () => new PeerAuthError('not-a-peer', `${label} sent no greeting`));
    if (!hello.subarray(0, 4).equals(MAGIC)) {
      opts.gate?.failed(address, 'garbage');
      throw new PeerAuthError('not-a-peer', `${label} is not a Strata client`);
    }
    const sN = crypto.randomBytes(NONCE_BYTES);
    const greet = Buffer.alloc(4 + 1 + 1 + 4 + NONCE_BYTES);
    MAGIC.copy(greet, 0);
    greet[4] = PEER_WIRE_VERSION;
    if (retryMs !== undefined) {
      greet[5] = 2;
      greet.writeUInt32BE(Math.ceil(retryMs / 1000), 6);
      sock.end(greet);
      throw new PeerAuthError('rate-limited', `${label} is blocked for ${Math.ceil(retryMs / 1000)} s after failed logins`, retryMs);
    }
    sN.copy(greet, 10);
    sock.write(greet);
    if (hello[4] !== PEER_WIRE_VERSION) {
      sock.end();
      throw new PeerAuthError('version', `${label} speaks peer protocol ${hello[4]}`);
    }
    const cN = hello.subarray(5);
    const proof = await r.read(MAC_BYTES, 'a login proof', () => new PeerAuthError('timeout', `${label} sent no login proof`));
    const replay = opts.seenNonces?.seen(cN) ?? false;
    const good = crypto.timingSafeEqual(proof, mac(key, 'strata-peer/1 client\0', cN, sN));
    if (!good || replay) {
      opts.gate?.failed(address, replay ? 'replay' : 'bad-token');
      await new Promise((res) => setTimeout(res, opts.failureDelayMs ?? 250));
      sock.end(Buffer.alloc(1 + MAC_BYTES, 1).fill(0, 1));
      throw new PeerAuthError('bad-token', replay ? `${label} replayed an earlier handshake` : `${label} presented a wrong token`);
    }
    opts.seenNonces?.add(cN);
    opts.gate?.succeeded(address);
    sock.write(Buffer.concat([Buffer.of(0), mac(key, 'strata-peer/1 server\0', cN, sN)]));
    return new SecureChannel(sock, deriveKeys(key, cN, sN, 'server'), r.detach(), { ...opts, label });
  } catch (e) {
    r.detach();
    if (!(e instanceof PeerAuthError)) opts.gate?.failed(address, 'timeout');
    sock.destroy();
    throw e;
  }
}

/** Client nonces seen recently: a bounded set, oldest forgotten first. */
export class NonceCache {
  private readonly set = new Set<string>();
  constructor(private readonly max = 65_536) {}
  seen(n: Buffer): boolean {
    return this.set.has(n.toString('base64'));
  }
  add(n: Buffer): void {
    this.set.add(n.toString('base64'));
    if (this.set.size > this.max) this.set.delete(this.set.values().next().value as string);
  }
}

/** Reads fixed-size handshake messages, then hands any early bytes to the channel. */
class HandshakeReader {
  private readonly q = new ByteQueue();
  private waiting?: () => void;
  private ended = false;
  private readonly onData = (b: Buffer) => {
    this.q.push(b);
    this.waiting?.();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.waiting?.();
  };

  constructor(
    private readonly sock: net.Socket,
    private readonly label: string,
    private readonly timeoutMs: number,
  ) {
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('close', this.onEnd);
    sock.on('error', this.onEnd);
  }

  async read(n: number, what: string, onClose?: () => PeerAuthError): Promise<Buffer> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const b = this.q.take(n);
      if (b) return b;
      if (this.ended) {
        throw onClose?.() ?? new PeerAuthError('closed', `${this.label} closed the connection before ${what}: is it a Strata peer agent (strata-peer)?`);
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new PeerAuthError('timeout', `${this.label} did not send ${what} within ${this.timeoutMs} ms: is it a Strata peer agent (strata-peer)?`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiting = undefined;
    }
  }

  /** Stops listening; returns bytes that arrived after the handshake. */
  detach(): Buffer {
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onEnd);
    this.sock.off('close', this.onEnd);
    this.sock.off('error', this.onEnd);
    return this.q.drain();
  }
}
