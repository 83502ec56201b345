import * as crypto from 'crypto';
import * as net from 'net';
import { Duplex } from 'stream';
import { ByteQueue } from '../net/byteQueue';
import { CryptoPool, sharedCryptoPool } from './cryptoPool';

// An authenticated, encrypted byte stream over TCP between the sidecar and a peer agent: the
// record layer that runs after the login (peerHandshake.ts) on the session keys it derived.
//
// Why this and not TLS: Node's TLS wants certificates (or PSK callbacks with their own sharp
// edges across OpenSSL versions); a pre-shared token already gives both sides a secret, so a
// mutual HMAC challenge-response plus AES-256-GCM records (all node:crypto, ~200 lines) is the
// smaller thing to get right and to audit. See docs/cluster.md "Security" for the threat model.
//
// Records: | len u32 BE | AES-256-GCM(type u8 | payload) + tag[16] |, nonce = salt[4] | seq u64,
// the length header as associated data. A replayed, reordered, dropped or altered record fails
// the tag and kills the connection. Types: DATA, PING (heartbeat), CLOSE (reason).
//
// A clean end is the CLOSE record, always the last record sent, then TCP FIN. A FIN without it is
// an error ('ECONNCUT'), not an end: anyone on the path can forge a FIN and cut a stream short,
// and a reader that took that for the end would act on half of what was sent. Version 2
// (PEER_WIRE_VERSION, peerHandshake.ts) brought this rule: a version-1 agent never sends CLOSE on a
// plain end.

const TAG_BYTES = 16;
/** Largest plaintext per record; bigger writes are cut. */
export const MAX_RECORD = 256 * 1024;
/**
 * Bytes buffered in either direction before backpressure applies. Node's 16 KiB default makes
 * every 64 KiB read wait for a 'drain' (an event-loop round per chunk: measured 3× slower
 * generation when the logits come back through the tunnel); RPC traffic is bursty and bounded.
 */
export const BUFFER_CAP = 8 * 1024 * 1024;

/** Records at least this big are sealed and opened on the crypto pool's threads (when it has any). */
const PARALLEL_MIN = 64 * 1024;

const REC_DATA = 0;
const REC_PING = 1;
const REC_CLOSE = 2;

/** Keys from the handshake (peerHandshake.ts deriveKeys): one AES key and nonce salt per direction. */
export interface SessionKeys {
  sendKey: Buffer;
  sendSalt: Buffer;
  recvKey: Buffer;
  recvSalt: Buffer;
}

export interface ChannelOptions {
  /** Send a heartbeat when nothing else was sent for this long. Default 2000 ms; 0: none. */
  heartbeatMs?: number;
  /** Nothing received for this long: the peer is gone (unplugged, frozen). Default 10000 ms; 0: never. */
  deadAfterMs?: number;
  /** For messages. */
  label?: string;
  /** Threads for big records; default the process's shared pool (none on small machines); null: none. */
  cryptoPool?: CryptoPool | null;
}

/**
 * The encrypted stream after a successful handshake: a Duplex of plaintext bytes with
 * backpressure both ways. Errors carry `code`: 'EPEERDEAD' (heartbeats stopped), 'EBADRECORD'
 * (tampering or a protocol bug), or the socket's own.
 */
export class SecureChannel extends Duplex {
  private readonly q = new ByteQueue();
  private readonly pool?: CryptoPool;
  /**
   * Records (or the end of a write) waiting for earlier records sealed on the pool: the wire
   * must carry them in sequence order. Empty unless a big write is in flight.
   */
  private readonly outQ: Array<{ rec?: Buffer; done?: () => void }> = [];
  /** Received records waiting for earlier ones being opened on the pool, in sequence order. */
  private readonly inQ: Array<{ plain?: Buffer }> = [];
  private sendSeq = 0n;
  private recvSeq = 0n;
  private lastRecv = Date.now();
  private lastSend = Date.now();
  private timer?: NodeJS.Timeout;
  private gotEnd = false;
  /** Our CLOSE record is sealed: nothing may follow it. */
  private closeSent = false;
  /** The peer's CLOSE record arrived (in sequence): its FIN is a clean end. */
  private closeReceived = false;
  /** What our CLOSE record says (closeWithReason). */
  private closeReason = '';
  private readonly label: string;
  /** Set once the peer said why it closes (a CLOSE record with a reason). */
  remoteCloseReason?: string;
  readonly remoteAddress: string;

  constructor(
    readonly socket: net.Socket,
    private readonly keys: SessionKeys,
    initial: Buffer,
    opts: ChannelOptions = {},
  ) {
    super({ allowHalfOpen: false, readableHighWaterMark: BUFFER_CAP, writableHighWaterMark: BUFFER_CAP });
    this.label = opts.label ?? `${socket.remoteAddress}:${socket.remotePort}`;
    this.remoteAddress = socket.remoteAddress ?? '';
    socket.setNoDelay(true);
    // The socket must not answer the peer's FIN with its own on its own (net's default): our FIN
    // has to follow our CLOSE record, which _final sends once this channel's writer is done.
    socket.allowHalfOpen = true;
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('error', (e) => this.destroy(e));
    socket.on('end', () => {
      this.gotEnd = true;
      this.endIfDrained();
    });
    socket.on('close', () => {
      clearInterval(this.timer);
      // A close without a FIN first (RST, or we destroyed the socket): no more data will come.
      // After the peer's CLOSE record nothing was lost, so that is no error.
      if (this.gotEnd || this.destroyed) return;
      if (this.closeReceived) this.destroy();
      else this.destroy(Object.assign(new Error(`${this.label} reset the connection`), { code: 'ECONNRESET' }));
    });
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
    this.deadAfterMs = opts.deadAfterMs ?? 10_000;
    this.pool = opts.cryptoPool === null ? undefined : (opts.cryptoPool ?? sharedCryptoPool());
    this.armTimer();
    if (initial.length) this.onData(initial);
  }

  /** Our heartbeat interval (the other side should wait at least a few of them). */
  heartbeatMs: number;
  private deadAfterMs: number;

  /** Waits at least this long without a record before declaring the peer dead (0: never). */
  setDeadAfter(ms: number): void {
    this.deadAfterMs = ms;
    this.armTimer();
  }

  private armTimer(): void {
    clearInterval(this.timer);
    const hb = this.heartbeatMs;
    const dead = this.deadAfterMs;
    if (hb <= 0 && dead <= 0) return;
    // Ticks often enough that heartbeats leave at most 1.5 intervals apart.
    const every = Math.max(25, Math.min(hb > 0 ? hb / 2 : Infinity, dead > 0 ? dead / 4 : Infinity));
    this.timer = setInterval(() => {
      const now = Date.now();
      if (this.deadAfterMs > 0 && now - this.lastRecv > this.deadAfterMs) {
        const e = Object.assign(new Error(`${this.label} stopped answering (nothing for ${Math.round((now - this.lastRecv) / 1000)} s)`), {
          code: 'EPEERDEAD',
        });
        this.destroy(e);
        return;
      }
      // No heartbeat once the peer has ended its side: it may be gone entirely, and a write
      // into its closed socket is an EPIPE that would kill the channel (and an owner without
      // an error listener) for nothing.
      if (this.heartbeatMs > 0 && !this.gotEnd && now - this.lastSend >= this.heartbeatMs) this.sendRecord(REC_PING, Buffer.alloc(0));
    }, every);
    this.timer.unref();
  }

  /** Tells the peer why, then closes (the reason rides in the CLOSE record, after all data). */
  closeWithReason(reason: string): void {
    if (this.destroyed) return;
    this.closeReason = reason.slice(0, 500);
    this.end();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const whenFlushed = () => {
      if (this.socket.writableLength < BUFFER_CAP) cb();
      else this.socket.once('drain', () => cb());
    };
    if (this.pool && chunk.length >= 2 * PARALLEL_MIN) {
      // Sealed on the pool's threads; written in order as they come back.
      for (let off = 0; off < chunk.length; off += MAX_RECORD) this.sendParallel(REC_DATA, chunk.subarray(off, Math.min(chunk.length, off + MAX_RECORD)));
      this.outQ.push({ done: whenFlushed });
      this.flushOut();
      return;
    }
    for (let off = 0; off < chunk.length; off += MAX_RECORD) {
      this.sendRecord(REC_DATA, chunk.subarray(off, Math.min(chunk.length, off + MAX_RECORD)));
    }
    if (this.outQ.length) this.outQ.push({ done: whenFlushed });
    else whenFlushed();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    // Coalesce small writes into one record (llama.cpp writes a command as 3 small sends).
    this._write(Buffer.concat(chunks.map((c) => c.chunk)), 'binary', cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    // Every write has called back, so the CLOSE record takes the last sequence number; it still
    // waits behind records being sealed on the pool, and the FIN waits behind it.
    this.sendRecord(REC_CLOSE, Buffer.from(this.closeReason, 'utf8'));
    this.closeSent = true;
    if (this.outQ.length) this.outQ.push({ done: () => this.socket.end(cb) });
    else this.socket.end(cb);
  }

  override _read(): void {
    this.socket.resume();
  }

  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    clearInterval(this.timer);
    this.socket.destroy();
    cb(err);
  }

  private nextNonce(salt: Buffer, seq: bigint): Buffer {
    const nonce = Buffer.alloc(12);
    salt.copy(nonce, 0);
    nonce.writeBigUInt64BE(seq, 4);
    return nonce;
  }

  private sendRecord(type: number, payload: Buffer): boolean {
    // After CLOSE (a heartbeat tick, say) nothing goes out: the peer would take it for tampering.
    if (this.socket.destroyed || !this.socket.writable || this.closeSent) return false;
    const nonce = this.nextNonce(this.keys.sendSalt, this.sendSeq++);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(1 + payload.length + TAG_BYTES, 0);
    const c = crypto.createCipheriv('aes-256-gcm', this.keys.sendKey, nonce);
    c.setAAD(header);
    const body = Buffer.concat([header, c.update(Buffer.of(type)), c.update(payload), c.final(), c.getAuthTag()]);
    this.lastSend = Date.now();
    // Behind records still being sealed on the pool: the sequence number is taken, the wire waits.
    if (this.outQ.length) {
      this.outQ.push({ rec: body });
      return true;
    }
    return this.socket.write(body);
  }

  private sendParallel(type: number, payload: Buffer): void {
    const nonce = this.nextNonce(this.keys.sendSalt, this.sendSeq++);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(1 + payload.length + TAG_BYTES, 0);
    const slot: { rec?: Buffer; done?: () => void } = {};
    this.outQ.push(slot);
    this.lastSend = Date.now();
    this.pool!.seal(this.keys.sendKey, nonce, header, type, payload).then(
      (rec) => {
        slot.rec = rec;
        this.flushOut();
      },
      (e: Error) => this.destroy(e),
    );
  }

  /** Writes what is ready at the head of the queue, in sequence order. */
  private flushOut(): void {
    while (this.outQ.length) {
      const head = this.outQ[0];
      if (head.done) {
        this.outQ.shift();
        head.done();
      } else if (head.rec) {
        this.outQ.shift();
        if (!this.socket.destroyed) this.socket.write(head.rec);
      } else {
        return;
      }
    }
  }

  private onData(b: Buffer): void {
    this.lastRecv = Date.now();
    this.q.push(b);
    for (;;) {
      if (this.destroyed || this.q.length < 4) return;
      const len = this.q.peekUInt32BE();
      if (len < 1 + TAG_BYTES || len > MAX_RECORD + 1 + TAG_BYTES) {
        this.destroy(Object.assign(new Error(`${this.label} sent a malformed record (length ${len})`), { code: 'EBADRECORD' }));
        return;
      }
      if (this.q.length < 4 + len) return;
      const head = this.q.take(4)!;
      const body = this.q.take(len)!;
      const nonce = this.nextNonce(this.keys.recvSalt, this.recvSeq++);
      if (this.pool && len >= PARALLEL_MIN) {
        const slot: { plain?: Buffer } = {};
        this.inQ.push(slot);
        // Opened on the pool; delivered in order. Bound what waits there like the readable side.
        if (this.inQ.length * MAX_RECORD >= BUFFER_CAP) this.socket.pause();
        this.pool.open(this.keys.recvKey, nonce, head, body).then(
          (plain) => {
            slot.plain = plain;
            this.drainIn();
          },
          () => this.badRecord(),
        );
        continue;
      }
      let plain: Buffer;
      try {
        const d = crypto.createDecipheriv('aes-256-gcm', this.keys.recvKey, nonce);
        d.setAAD(head);
        d.setAuthTag(body.subarray(len - TAG_BYTES));
        plain = Buffer.concat([d.update(body.subarray(0, len - TAG_BYTES)), d.final()]);
      } catch {
        this.badRecord();
        return;
      }
      if (this.inQ.length) this.inQ.push({ plain });
      else this.deliver(plain);
    }
  }

  private badRecord(): void {
    this.destroy(
      Object.assign(new Error(`${this.label} sent a record that fails authentication (tampered, replayed or out of order)`), { code: 'EBADRECORD' }),
    );
  }

  private drainIn(): void {
    while (this.inQ.length && this.inQ[0].plain && !this.destroyed) this.deliver(this.inQ.shift()!.plain!);
    if (this.endIfDrained()) return;
    if (!this.destroyed && this.inQ.length * MAX_RECORD < BUFFER_CAP / 2 && this.readableLength < BUFFER_CAP) this.socket.resume();
  }

  /** After the FIN, once every record before it is delivered: a clean end only if CLOSE came. */
  private endIfDrained(): boolean {
    if (!this.gotEnd || this.inQ.length || this.destroyed) return false;
    if (!this.closeReceived) {
      this.destroy(
        Object.assign(new Error(`${this.label} cut the connection without closing it (the other end died, or something on the network cut it)`), {
          code: 'ECONNCUT',
        }),
      );
    }
    return true;
  }

  private deliver(plain: Buffer): void {
    const type = plain[0];
    if (this.closeReceived) {
      // Authentic, yet after the peer's last record: a bug or a peer that lies; either way, stop.
      this.destroy(Object.assign(new Error(`${this.label} sent a record after closing the connection`), { code: 'EBADRECORD' }));
    } else if (type === REC_DATA) {
      if (!this.push(plain.subarray(1)) && this.readableLength >= BUFFER_CAP) this.socket.pause();
    } else if (type === REC_CLOSE) {
      this.closeReceived = true;
      const reason = plain.subarray(1).toString('utf8');
      if (reason) this.remoteCloseReason = reason;
      this.push(null);
    }
    // REC_PING: lastRecv is all it is for.
  }
}
