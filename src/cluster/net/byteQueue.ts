import { Duplex } from 'stream';

// Incoming bytes as a queue of chunks: take exactly n bytes once they are there, without
// concatenating everything received so far (a model load pushes gigabytes through here).

export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.total += b.length;
  }

  /** The first 4 bytes as a big-endian u32, without consuming them (length must be >= 4). */
  peekUInt32BE(): number {
    const first = this.chunks[0];
    if (first.length - this.head >= 4) return first.readUInt32BE(this.head);
    const b = Buffer.allocUnsafe(4);
    let filled = 0;
    for (let i = 0, off = this.head; filled < 4; i++, off = 0) {
      const c = this.chunks[i];
      const k = Math.min(4 - filled, c.length - off);
      c.copy(b, filled, off, off + k);
      filled += k;
    }
    return b.readUInt32BE(0);
  }

  /** Exactly n bytes from the front, or undefined while fewer are queued. */
  take(n: number): Buffer | undefined {
    if (n > this.total) return undefined;
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    if (first.length - this.head >= n) {
      // The common case: no copy.
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      this.total -= n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const k = Math.min(n - filled, c.length - this.head);
      c.copy(out, filled, this.head, this.head + k);
      filled += k;
      this.head += k;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.total -= n;
    return out;
  }

  /** Everything queued, leaving the queue empty. */
  drain(): Buffer {
    return this.take(this.total) ?? Buffer.alloc(0);
  }
}

/**
 * Request/response reads on a socket: read(n) resolves with exactly n bytes, or rejects when
 * the socket ends, errors or the deadline passes. Only one read may be pending at a time.
 */
export class SocketReader {
  private readonly q = new ByteQueue();
  private pending?: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout };
  private ended?: Error;

  constructor(
    sock: Duplex,
    private readonly describe: () => string,
  ) {
    sock.on('data', (b: Buffer) => {
      this.q.push(b);
      this.pump();
    });
    sock.on('error', (e) => this.end(e));
    sock.on('close', () => this.end(new Error(`${this.describe()} closed the connection`)));
  }

  read(n: number, timeoutMs: number): Promise<Buffer> {
    if (this.pending) return Promise.reject(new Error('SocketReader: a read is already pending'));
    return new Promise((resolve, reject) => {
      this.pending = { n, resolve, reject };
      if (timeoutMs > 0) {
        this.pending.timer = setTimeout(() => {
          const p = this.pending;
          this.pending = undefined;
          p?.reject(Object.assign(new Error(`${this.describe()} did not answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
        }, timeoutMs);
      }
      this.pump();
    });
  }

  /** Bytes received but not read yet. */
  rest(): Buffer {
    return this.q.drain();
  }

  private pump(): void {
    const p = this.pending;
    if (!p) return;
    const b = this.q.take(p.n);
    if (b) {
      this.pending = undefined;
      clearTimeout(p.timer);
      p.resolve(b);
    } else if (this.ended) {
      this.pending = undefined;
      clearTimeout(p.timer);
      p.reject(this.ended);
    }
  }

  private end(e: Error): void {
    this.ended ??= e;
    this.pump();
  }
}
