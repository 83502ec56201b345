import * as crypto from 'crypto';
import * as fsp from 'fs/promises';
import * as path from 'path';
import * as lockfile from 'proper-lockfile';
import { abortedError, LlamaInstallError } from './installError';

// The cache in ~/.cache/strata is shared by every window, daemon and test process: whoever fills
// a directory holds its lock, and stamps are written whole or not at all.

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once if the lock is busy and we start waiting. */
  onWait?: () => void;
  staleMs?: number;
  pollMs?: number;
  /** For messages: "the llama.cpp build", "the llama.cpp source download". */
  what: string;
}

/**
 * Runs fn while holding a cross-process lock on `target` (proper-lockfile: mkdir `${target}.lock`,
 * mtime refreshed while held, taken over when older than staleMs, so a killed holder blocks
 * others for at most staleMs). Waits, without a deadline, while another live process holds it:
 * the holder is doing exactly the work the waiter wants. fn gets a signal that also fires if the
 * lock is lost, so two processes never keep working in the same directory.
 */
export async function withLock<T>(target: string, opts: LockOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const staleMs = opts.staleMs ?? 30_000;
  const lost = new AbortController();
  let release: (() => Promise<void>) | undefined;
  let waited = false;
  await fsp.mkdir(path.dirname(target), { recursive: true });
  for (;;) {
    if (opts.signal?.aborted) throw abortedError(opts.what);
    try {
      release = await lockfile.lock(target, {
        realpath: false,
        stale: staleMs,
        update: Math.max(1000, Math.floor(staleMs / 3)),
        retries: 0,
        onCompromised: (err) => lost.abort(err),
      });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      if (!waited) {
        waited = true;
        opts.onWait?.();
      }
      await sleep(opts.pollMs ?? 500, opts.signal);
    }
  }
  const signal = opts.signal ? AbortSignal.any([opts.signal, lost.signal]) : lost.signal;
  try {
    const result = await fn(signal);
    if (lost.signal.aborted) throw lockLost(opts.what, target);
    return result;
  } catch (err) {
    if (lost.signal.aborted) throw lockLost(opts.what, target);
    throw err;
  } finally {
    await release().catch(() => undefined);
  }
}

function lockLost(what: string, target: string): LlamaInstallError {
  return new LlamaInstallError(
    'LOCK_LOST',
    `${what} lost its lock ${target}.lock (the process was stalled for too long or the lock was removed); run it again.`,
  );
}

/** Writes via a temp file and rename, so a reader never sees half a file. */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, file);
}
