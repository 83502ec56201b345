import { Duplex } from 'stream';

// Newline-delimited JSON on a stream: the open exchange of every agent connection and the
// control channel's messages.

/** Reads one line (without the newline); bytes after it are put back into the stream. */
export function readLine(stream: Duplex, opts: { timeoutMs: number; maxBytes?: number; what: string }): Promise<string> {
  const max = opts.maxBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, line?: string, rest?: Buffer) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('error', onError);
      stream.off('close', onClose);
      // Not flowing until the next consumer attaches.
      stream.pause();
      if (rest && rest.length) stream.unshift(rest);
      if (err) reject(err);
      else resolve(line!);
    };
    const onData = (b: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, b]) : b;
      const nl = buf.indexOf(10);
      if (nl >= 0) done(undefined, buf.subarray(0, nl).toString('utf8'), buf.subarray(nl + 1));
      else if (buf.length > max) done(new Error(`${opts.what}: line longer than ${max} bytes`));
    };
    const onError = (e: Error) => done(e);
    const onClose = () => done(new Error(`${opts.what}: connection closed`));
    const timer = setTimeout(
      () => done(Object.assign(new Error(`${opts.what}: no answer within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })),
      opts.timeoutMs,
    );
    stream.on('data', onData);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

/** Calls onMessage for every JSON line; a line that does not parse ends the stream with an error. */
export function onJsonLines(stream: Duplex, onMessage: (msg: unknown) => void, maxLine = 16 * 1024 * 1024): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (s: string) => {
    pending += s;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        stream.destroy(new Error('received a line that is not JSON'));
        return;
      }
      onMessage(msg);
    }
    if (pending.length > maxLine) stream.destroy(new Error('received an over-long line'));
  });
  // readLine() leaves the stream paused; an explicit pause is not undone by adding a listener.
  stream.resume();
}

export function writeJsonLine(stream: Duplex, msg: unknown): boolean {
  if (stream.destroyed || stream.writableEnded) return false;
  return stream.write(`${JSON.stringify(msg)}\n`);
}
