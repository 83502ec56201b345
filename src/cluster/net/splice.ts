import { Duplex } from 'stream';
import { BUFFER_CAP } from '../transport/secureChannel';

/** Like pipe(), but with BUFFER_CAP instead of the 16 KiB default before pausing the source. */
function pump(src: Duplex, dst: Duplex, rewrite?: (d: Buffer) => Buffer): void {
  src.on('data', (d: Buffer) => {
    dst.write(rewrite ? rewrite(d) : d);
    if (dst.writableLength >= BUFFER_CAP && !src.isPaused()) {
      src.pause();
      dst.once('drain', () => src.resume());
    }
  });
  src.on('end', () => dst.end());
  // A stream paused explicitly (readLine does) stays paused when a 'data' listener is added.
  src.resume();
}

/**
 * Pipes a and b both ways. An error on either side destroys both at once (a tunnel must not
 * linger half-dead: llama-server has to notice); a clean close ends the other side, which gets a
 * few seconds to flush. onClose runs once.
 */
export function splice(a: Duplex, b: Duplex, onClose: (err?: Error) => void, rewrite?: { aToB?: (d: Buffer) => Buffer; bToA?: (d: Buffer) => Buffer }): void {
  let done = false;
  const finish = (err?: Error, hard = false) => {
    if (!done) {
      done = true;
      onClose(err);
    }
    if (hard) {
      a.destroy();
      b.destroy();
    } else {
      for (const s of [a, b]) {
        if (!s.destroyed) {
          s.end();
          setTimeout(() => s.destroy(), 5000).unref();
        }
      }
    }
  };
  pump(a, b, rewrite?.aToB);
  pump(b, a, rewrite?.bToA);
  a.on('error', (e) => finish(e, true));
  b.on('error', (e) => finish(e, true));
  a.on('close', () => finish());
  b.on('close', () => finish());
}

/**
 * Zeroes bytes [from, to) of a stream as it passes (across chunk boundaries), then gets out of
 * the way. Used on the RPC hello: its transport capabilities (RDMA queue pair and GID) would let
 * llama-server and rpc-server leave the tunnel for an unauthenticated RDMA path.
 */
export function zeroRange(from: number, to: number): (d: Buffer) => Buffer {
  let seen = 0;
  return (d) => {
    const start = seen;
    seen += d.length;
    if (start >= to || seen <= from) return d;
    const out = Buffer.from(d);
    out.fill(0, Math.max(0, from - start), Math.min(d.length, to - start));
    return out;
  };
}
