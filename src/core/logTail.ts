import * as fs from 'fs';

// What a child process wrote to its log file since we started it: the size before, then the
// newest bytes after it (capped), for error messages that show the child's last lines.

/** The file's size now, or 0 when it does not exist yet. */
export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The last (at most `maxBytes`) bytes written after `offset`, as text; '' when unreadable. */
export function readSince(file: string, offset: number, maxBytes: number): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(maxBytes, Math.max(0, size - offset));
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}
