import { ChildProcess, spawn, SpawnOptions } from 'child_process';

// Test processes must never outlive the test run, even when a test throws or mocha is
// interrupted: every child is started in its own process group and tracked here, and an
// exit hook kills whatever is left.

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

process.on('exit', () => {
  for (const c of live) killGroup(c, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of live) killGroup(c, 'SIGKILL');
    process.exit(130);
  });
}

export interface ManagedProcess {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr interleaved as received. */
  logText(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after graceMs. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export function startProcess(cmd: string, args: string[], opts: SpawnOptions & { maxLogBytes?: number } = {}): ManagedProcess {
  const child = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  live.add(child);
  const max = opts.maxLogBytes ?? 4 * 1024 * 1024;
  let log = '';
  const append = (b: Buffer) => {
    log += b.toString('utf8');
    // Keep the tail: the interesting lines of a crash are the last ones.
    if (log.length > max) log = log.slice(log.length - max);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.on('error', (err) => {
      append(Buffer.from(`\n[spawn error] ${err.message}\n`));
      live.delete(child);
      resolve({ code: -1, signal: null });
    });
  });
  const stop = async (graceMs = 5000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    killGroup(child, 'SIGTERM');
    const t = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  return { child, pid: child.pid, logText: () => log, exited, stop };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a value, the process dies, or the timeout passes. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  opts: { timeoutMs: number; proc?: ManagedProcess; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let dead = false;
  opts.proc?.exited.then(() => {
    dead = true;
  });
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (dead) throw new Error(`${what}: process exited early. Last output:\n${tail(opts.proc!.logText())}`);
    if (Date.now() > deadline)
      throw new Error(`${what}: timed out after ${opts.timeoutMs} ms.${opts.proc ? ` Last output:\n${tail(opts.proc.logText())}` : ''}`);
    await sleep(opts.intervalMs ?? 200);
  }
}

export function tail(text: string, lines = 25): string {
  return text.split('\n').slice(-lines).join('\n');
}
