// The last N lines of a log, kept in memory so that a client can ask "what happened?" and a
// crash message can quote the lines that explain it, without reading files back.

export class LogRing {
  private readonly lines: string[] = [];
  constructor(private readonly capacity: number) {}

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }

  tail(n: number): string[] {
    return n <= 0 ? [] : this.lines.slice(-n);
  }
}

/** Splits a byte stream into lines; `partial` shows the unfinished last line (progress dots). */
export class LineSplitter {
  private buf = '';
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line);
    }
    // A process that never prints a newline must not grow this without bound.
    if (this.buf.length > 64 * 1024) {
      this.onLine(this.buf);
      this.buf = '';
    }
  }

  get partial(): string {
    return this.buf;
  }

  flush(): void {
    if (this.buf) this.onLine(this.buf);
    this.buf = '';
  }
}
