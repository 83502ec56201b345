import { Duplex } from 'stream';

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
  a.pipe(b);
  b.pipe(a);
  a.on('error', (e) => finish(e, true));
  b.on('error', (e) => finish(e, true));
  a.on('close', () => finish());
  b.on('close', () => finish());
}
