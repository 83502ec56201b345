import * as fs from 'fs';
import { performance } from 'perf_hooks';

// CPU time of the main thread, in milliseconds: the first field of Linux's
// /proc/self/task/<tid>/schedstat (nanoseconds on a CPU, precise, ~7 µs to read). Unlike
// performance.now() it does not count time the thread waits for a core, which on a busy 2-core
// machine turns a 0.1 ms section into several ms. Node 20 has no process.threadCpuUsage().
// Elsewhere: wall time.

const file = `/proc/self/task/${process.pid}/schedstat`;
let fd: number | undefined;
try {
  fd = fs.openSync(file, 'r');
} catch {
  fd = undefined;
}
const buf = Buffer.alloc(64);

export const threadCpuAvailable = fd !== undefined;

export function threadCpuMs(): number {
  if (fd === undefined) return performance.now();
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  let ns = 0;
  for (let i = 0; i < n; i++) {
    const c = buf[i];
    if (c < 48 || c > 57) break;
    ns = ns * 10 + (c - 48);
  }
  return ns / 1e6;
}
