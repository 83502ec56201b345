import * as fs from 'fs';
import { LogRing } from './logRing';

// The daemon's own log. Its stdout/stderr are the log file (the starter opened it), so a plain
// synchronous write lands there in order, even in the last moments before a crash.

export type LogListener = (line: string) => void;

export class Logger {
  readonly ring = new LogRing(1000);
  private readonly listeners = new Set<LogListener>();

  constructor(private readonly fd = 1) {}

  info(msg: string): void {
    this.write('I', msg);
  }

  warn(msg: string): void {
    this.write('W', msg);
  }

  error(msg: string): void {
    this.write('E', msg);
  }

  onLine(l: LogListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private write(level: string, msg: string): void {
    const line = `${new Date().toISOString()} ${level} [${process.pid}] ${msg}`;
    this.ring.push(line);
    try {
      fs.writeSync(this.fd, line + '\n');
    } catch {
      // A closed or full log must never take the daemon down.
    }
    for (const l of this.listeners) l(line);
  }
}

/** Moves a log that grew past maxBytes to <file>.1 (one generation is enough to read a crash). */
export function rotateIfLarge(file: string, maxBytes: number): void {
  try {
    if (fs.statSync(file).size > maxBytes) fs.renameSync(file, `${file}.1`);
  } catch {
    /* absent */
  }
}
