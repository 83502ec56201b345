import { Duplex } from 'stream';
import { BUFFER_CAP } from '../transport/secureChannel';

/** Like pipe(), but with BUFFER_CAP instead of the 16 KiB default before pausing the source. */
function pump(src: Duplex, dst: Duplex): void {
  src.on('data', (d: Buffer) => {
    dst.write(d);
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
export function splice(a: Duplex, b: Duplex, onClose: (err?: Error) => void): void {
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
  pump(a, b);
  pump(b, a);
  a.on('error', (e) => finish(e, true));
  b.on('error', (e) => finish(e, true));
  a.on('close', () => finish());
  b.on('close', () => finish());
}
