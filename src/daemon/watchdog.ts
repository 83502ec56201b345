import { ChildProcess, spawn } from 'child_process';

// Kills a llama-server when its daemon dies, even by kill -9, even when no new daemon starts to
// clean up after it. llama-server does not watch its stdin while it loads, so a pipe to it alone
// is not enough; this tiny process watches for the daemon instead.
//
// The watchdog's stdin is a pipe whose only writer is the daemon. The kernel closes it when the
// daemon dies for any reason, and the blocked `read` returns at once: no polling, no delay
// (measured: the llama-server is gone within milliseconds of the daemon's death). When the daemon
// stops the child itself it writes "done" and the watchdog exits without killing anything. Before
// it kills, it checks the pid still has the recorded start time, so a recycled pid is safe.
//
// POSIX sh rather than a second Node: ~1 MB instead of ~40 MB per watchdog, and it starts in
// about a millisecond. On Windows (no sh) a Node one-liner does the same job.

const SH_SCRIPT = `
pid=$1; st=$2
while IFS= read -r line; do
  [ "$line" = done ] && exit 0
done
if [ -n "$st" ] && [ -d /proc/self ]; then
  [ -r "/proc/$pid/stat" ] || exit 0
  cur=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
  [ "$cur" = "$st" ] || exit 0
fi
kill -9 -"$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null
exit 0
`;

const NODE_SCRIPT = `
const pid = Number(process.argv[1]);
let buf = '';
process.stdin.on('data', (d) => { buf += d; if (buf.split(/\\r?\\n/).includes('done')) process.exit(0); });
process.stdin.on('end', () => { try { process.kill(pid, 'SIGKILL'); } catch {} process.exit(0); });
process.stdin.resume();
`;

export interface Watchdog {
  pid: number | undefined;
  /** The daemon stopped the child itself: let the watchdog go without killing. */
  release(): void;
  /** Closes the pipe without "done", exactly as the daemon's death does (tests). */
  closePipe(): void;
}

export function startWatchdog(childPid: number, childStartTime: string | undefined): Watchdog {
  let wd: ChildProcess;
  if (process.platform === 'win32') {
    wd = spawn(process.execPath, ['-e', NODE_SCRIPT, String(childPid)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      windowsHide: true,
      detached: true,
    });
  } else {
    // detached: its own session, so a signal to the daemon's process group cannot take the
    // watchdog down together with the daemon.
    wd = spawn('/bin/sh', ['-c', SH_SCRIPT, 'strata-watchdog', String(childPid), childStartTime ?? ''], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
  }
  wd.on('error', () => undefined);
  wd.stdin?.on('error', () => undefined);
  // The daemon's event loop must not wait for its watchdogs.
  wd.unref();
  (wd.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  let released = false;
  return {
    pid: wd.pid,
    release() {
      if (released) return;
      released = true;
      try {
        wd.stdin?.end('done\n');
      } catch {
        /* already gone */
      }
    },
    closePipe() {
      released = true;
      wd.stdin?.destroy();
    },
  };
}
