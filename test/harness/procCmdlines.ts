import * as fs from 'fs';

// What `ps` shows every local user: each process's argv, from /proc/<pid>/cmdline (world-readable
// on Linux). Tests of "no secret on a command line" read all of them, not only the ones they
// started, so that a wrapper (setpriv, a watchdog) or a grandchild cannot hide one.

export interface ProcCmdline {
  pid: number;
  argv: string[];
}

export function allCmdlines(): ProcCmdline[] {
  const out: ProcCmdline[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const raw = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (raw) out.push({ pid: Number(d), argv: raw.replace(/\0$/, '').split('\0') });
    } catch {
      /* gone between readdir and read */
    }
  }
  return out;
}

/** Processes whose command line contains `secret` anywhere (as an argument or inside one). */
export function cmdlinesContaining(secret: string): ProcCmdline[] {
  return allCmdlines().filter((p) => p.argv.some((a) => a.includes(secret)));
}

/** The value after `flag` in a process's argv. */
export function flagValue(p: ProcCmdline, flag: string): string | undefined {
  const i = p.argv.indexOf(flag);
  return i >= 0 ? p.argv[i + 1] : undefined;
}
