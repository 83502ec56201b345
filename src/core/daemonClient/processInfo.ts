import { execFileSync } from 'child_process';
import * as fs from 'fs';

// Telling "the process we started" apart from "some process that now has its pid". Pids are
// recycled, so a pid alone must never be enough to kill anything: we also record when the
// process started (and, for children, which executable it runs) and compare before acting.

export interface ProcessIdentity {
  pid: number;
  /** Opaque start-time token: clock ticks since boot on Linux, `ps lstart` text on macOS. */
  startTime?: string;
  /** Linux boot id, so that start ticks from before a reboot never match. */
  bootId?: string;
}

/** Alive and not a zombie (a killed child whose parent has not reaped it is as good as gone). */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform === 'linux') {
    const stat = readProcStat(pid);
    if (stat && (stat.state === 'Z' || stat.state === 'X')) return false;
  }
  return true;
}

interface ProcStat {
  state: string;
  startTicks: string;
}

function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses; everything after the last ") " is fixed.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); starttime is field 22.
  return { state: rest[0], startTicks: rest[19] };
}

let cachedBootId: string | undefined | null = null;
export function bootId(): string | undefined {
  if (cachedBootId === null) {
    try {
      cachedBootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = undefined;
    }
  }
  return cachedBootId;
}

export function processStartTime(pid: number): string | undefined {
  if (process.platform === 'linux') return readProcStat(pid)?.startTicks;
  if (process.platform === 'darwin' || process.platform === 'freebsd') {
    try {
      const out = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', timeout: 5000 }).trim();
      return out || undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The executable a process runs, where the OS says (Linux); undefined elsewhere. */
export function processExe(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

export function identify(pid: number): ProcessIdentity {
  return { pid, startTime: processStartTime(pid), bootId: bootId() };
}

/**
 * True only when `id.pid` is alive and is still the process that was identified: same start
 * time and boot. Where the OS cannot tell start times, a live pid counts as the same process
 * (the only option there; callers that kill on this answer also check the executable).
 */
export function isSameProcess(id: ProcessIdentity): boolean {
  if (!isPidAlive(id.pid)) return false;
  if (id.bootId && bootId() && id.bootId !== bootId()) return false;
  if (id.startTime === undefined) return true;
  // Unreadable now although recorded then: it exited between the two reads.
  return processStartTime(id.pid) === id.startTime;
}

/**
 * Sends `signal` to `pid`, or to its process group when `group` (POSIX; falls back to the pid
 * alone, whose group may be gone while it is not). False when neither could be signalled.
 */
export function signalProcess(pid: number, group: boolean, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(group && process.platform !== 'win32' ? -pid : pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}
