import * as fs from 'fs';
import * as path from 'path';
import { bootId, isPidAlive, isSameProcess, processExe, processStartTime, signalProcess } from './processInfo';

// One pid file per child that must not outlive its owner, so that an owner that died without
// cleaning up (kill -9, power loss mid-write, a bug) leaves enough behind for the next one to find
// its orphans. Used by the sidecar daemon for its llama-servers (src/daemon) and by spawnGuarded's
// fallback without the native addon (src/core/native/guard.ts). A pid file alone would be
// dangerous: pids are recycled. So each record also holds the process start time, the boot id and
// the executable, and a stale child is killed only when all of them still match; anything else is
// a stranger that now has the pid, and is left alone.

export interface ChildRecord {
  pid: number;
  /** Real path of the executable we started. */
  exe: string;
  startTime?: string;
  bootId?: string;
  /** The daemon (or other owner) that started it. */
  daemonPid: number;
  daemonStartTime?: string;
  startedAt: number;
  /** It leads its own process group: a kill reaches the whole group (POSIX). */
  group?: boolean;
}

export type StaleVerdict =
  /** Alive, and provably the process we started: kill it. */
  | 'ours'
  /** Gone: just forget the record. */
  | 'gone'
  /** The pid is alive but is another process (recycled pid, or it exec'd something else). */
  | 'stranger'
  /** Its daemon is still running: not stale at all. */
  | 'owned';

export function judgeRecord(rec: ChildRecord): StaleVerdict {
  // Its daemon (this one included) is alive: a live owner, not a stale child.
  if (isSameProcess({ pid: rec.daemonPid, startTime: rec.daemonStartTime, bootId: rec.bootId })) return 'owned';
  if (!isPidAlive(rec.pid)) return 'gone';
  if (rec.bootId && bootId() && rec.bootId !== bootId()) return 'stranger';
  if (rec.startTime !== undefined && processStartTime(rec.pid) !== rec.startTime) return 'stranger';
  const exe = processExe(rec.pid);
  if (exe !== undefined && exe !== rec.exe) return 'stranger';
  // Without a start time (no /proc, no ps) a live pid alone is not proof enough to kill.
  if (rec.startTime === undefined) return 'stranger';
  return 'ours';
}

export class ChildRegistry {
  constructor(readonly dir: string) {}

  private file(pid: number): string {
    return path.join(this.dir, `${pid}.json`);
  }

  record(pid: number, exe: string, opts: { group?: boolean } = {}): ChildRecord {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const rec: ChildRecord = {
      pid,
      exe: realpathOr(exe),
      startTime: processStartTime(pid),
      bootId: bootId(),
      daemonPid: process.pid,
      daemonStartTime: processStartTime(process.pid),
      startedAt: Date.now(),
      ...(opts.group ? { group: true } : {}),
    };
    const tmp = `${this.file(pid)}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600 });
    fs.renameSync(tmp, this.file(pid));
    return rec;
  }

  remove(pid: number): void {
    fs.rmSync(this.file(pid), { force: true });
  }

  list(): ChildRecord[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: ChildRecord[] = [];
    for (const n of names) {
      if (!/^\d+\.json$/.test(n)) continue;
      try {
        const rec = JSON.parse(fs.readFileSync(path.join(this.dir, n), 'utf8')) as ChildRecord;
        if (typeof rec.pid === 'number' && typeof rec.exe === 'string' && typeof rec.daemonPid === 'number') out.push(rec);
        else fs.rmSync(path.join(this.dir, n), { force: true });
      } catch {
        // Half-written by a daemon that died mid-write: nothing to trust in it.
        fs.rmSync(path.join(this.dir, n), { force: true });
      }
    }
    return out;
  }

  /**
   * Kills the children a dead daemon left behind (SIGTERM, then SIGKILL after graceMs) and
   * forgets records of processes that are gone or are strangers now. We kill rather than adopt:
   * a process that is not our child gives no exit status and no log, so it could not be
   * supervised; a fresh start is the state we can vouch for.
   */
  async reapStale(opts: { graceMs?: number; log?: (msg: string) => void } = {}): Promise<{ rec: ChildRecord; verdict: StaleVerdict }[]> {
    const results: { rec: ChildRecord; verdict: StaleVerdict }[] = [];
    for (const rec of this.list()) {
      const verdict = judgeRecord(rec);
      results.push({ rec, verdict });
      if (verdict === 'owned') continue;
      if (verdict === 'ours') {
        opts.log?.(`killing ${path.basename(rec.exe)} pid ${rec.pid} left behind by daemon pid ${rec.daemonPid}`);
        await terminate(rec.pid, opts.graceMs ?? 3000, rec.group);
      } else {
        opts.log?.(`forgetting pid file of ${rec.pid} (${verdict})`);
      }
      this.remove(rec.pid);
    }
    return results;
  }
}

function realpathOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * SIGTERM, then SIGKILL if still there after graceMs (to its process group too when `group`).
 * Resolves once it is gone (or after the kill).
 */
export async function terminate(pid: number, graceMs: number, group = false): Promise<void> {
  const signal = (s: NodeJS.Signals) => signalProcess(pid, group, s);
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isPidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isPidAlive(pid)) {
    signal('SIGKILL');
    const hard = Date.now() + 5000;
    while (isPidAlive(pid) && Date.now() < hard) await new Promise((r) => setTimeout(r, 20));
  }
}
