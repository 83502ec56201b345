import * as fs from 'fs';
import * as path from 'path';
import * as lockfile from 'proper-lockfile';
import { isSameProcess } from './processInfo';

// The daemon's lock file: how any window finds the one daemon of this user on this machine.
// It holds the control token, so it is 0600 in a 0700 directory and written atomically
// (temp + rename) so a reader never sees half of it.

export interface SidecarLock {
  pid: number;
  port: number;
  token: string;
  protocolVersion: number;
  /** Epoch ms. */
  startedAt: number;
  /** See ProcessIdentity: lets a reader tell the daemon from a process that reused its pid. */
  processStartTime?: string;
  bootId?: string;
  /** Extension version that built this daemon. */
  version?: string;
  logFile?: string;
}

export const LOCK_FILE_NAME = 'sidecar.lock';
export const DAEMON_LOG_NAME = 'sidecar.log';
/** Written by the daemon's supervisor, opened by the window's "Show Logs"; both name it here. */
export const SERVER_LOG_NAME = 'llama-server.log';

export function sidecarLockPath(stateDir: string): string {
  return path.join(stateDir, LOCK_FILE_NAME);
}

export function ensureStateDir(stateDir: string): void {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
}

/** The lock as written, or undefined when absent or unreadable (a half-dead daemon's leftovers). */
export function readSidecarLock(stateDir: string): SidecarLock | undefined {
  let text: string;
  try {
    text = fs.readFileSync(sidecarLockPath(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const o = JSON.parse(text) as Partial<SidecarLock>;
    if (typeof o.pid !== 'number' || typeof o.port !== 'number' || typeof o.token !== 'string' || typeof o.protocolVersion !== 'number') return undefined;
    return o as SidecarLock;
  } catch {
    return undefined;
  }
}

/** The daemon the lock names is still running (not a recycled pid). */
export function isLockLive(lock: SidecarLock): boolean {
  return isSameProcess({ pid: lock.pid, startTime: lock.processStartTime, bootId: lock.bootId });
}

export function writeSidecarLock(stateDir: string, lock: SidecarLock): void {
  ensureStateDir(stateDir);
  const file = sidecarLockPath(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(lock, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Removes the lock only if it is still this pid's: a successor may already have written its own. */
export function removeSidecarLockIfOwned(stateDir: string, pid: number): void {
  const cur = readSidecarLock(stateDir);
  if (cur && cur.pid !== pid) return;
  fs.rmSync(sidecarLockPath(stateDir), { force: true });
}

/**
 * Runs fn while holding a short-lived cross-process mutex named `name` in the state dir.
 * proper-lockfile's mkdir lock is atomic on every local file system and goes stale when its
 * holder dies (it refreshes the mtime while held), so a crashed holder blocks others for
 * `staleMs` at most.
 */
export async function withStateMutex<T>(stateDir: string, name: string, fn: () => Promise<T>, opts: { staleMs?: number; waitMs?: number } = {}): Promise<T> {
  ensureStateDir(stateDir);
  const target = path.join(stateDir, name);
  const stale = Math.max(2000, opts.staleMs ?? 10_000);
  const waitMs = opts.waitMs ?? 60_000;
  const deadline = Date.now() + waitMs;
  let release: (() => Promise<void>) | undefined;
  for (;;) {
    try {
      release = await lockfile.lock(target, {
        realpath: false,
        stale,
        // The holder must not crash its process if the lock is taken away (e.g. a suspended laptop).
        onCompromised: () => undefined,
      });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
