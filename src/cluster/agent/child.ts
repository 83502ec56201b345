import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { LifetimeGuard, selectLifetimeGuard } from '../../daemon/lifetimeGuard';
import { fileSize, readSince } from '../../core/logTail';

// Children of the agent (rpc-server, placement llama-servers) die with it: the kernel tie the
// sidecar uses (setpriv --pdeathsig on Linux, the native addon's spawnGuarded elsewhere), plus
// an exit hook for the ordinary ways out. Output goes to a log file and a small ring for errors.

export interface TiedChild {
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  kill(signal?: NodeJS.Signals): void;
  /** The last lines it printed (also in the log file). */
  tail(): string[];
  /** Everything printed so far into the log file since this start. */
  output(): string;
}

const live = new Set<TiedChild>();
let hooked = false;
let guard: LifetimeGuard | undefined | null = null;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export function startTied(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; logFile: string; log?: (m: string) => void }): TiedChild {
  hookExit();
  if (guard === null) guard = selectLifetimeGuard('auto', path.resolve(__dirname, '..'), (m) => opts.log?.(m));
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const startOffset = fileSize(opts.logFile);
  fs.appendFileSync(opts.logFile, `\n=== ${new Date().toISOString()} ${path.basename(cmd)} ${args.join(' ')}\n`);
  const ring: string[] = [];
  let partial = '';
  const onText = (s: string) => {
    const lines = (partial + s).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      ring.push(l);
      if (ring.length > 200) ring.shift();
    }
  };
  let child: TiedChild;
  if (guard?.kind === 'spawn') {
    const g = guard.spawn(cmd, args, { env: opts.env, outputFile: opts.logFile });
    let exited = false;
    const done = g.exited.then((r) => {
      exited = true;
      live.delete(child);
      return r;
    });
    child = {
      pid: g.pid,
      exited: done,
      hasExited: () => exited,
      kill: (s = 'SIGTERM') => {
        if (!exited) g.kill(s);
      },
      tail: () =>
        readSince(opts.logFile, startOffset, 1 << 20)
          .split('\n')
          .slice(-40),
      output: () => readSince(opts.logFile, startOffset, 1 << 20),
    };
  } else {
    const w = guard?.kind === 'wrap' ? guard.wrap(cmd, args) : { cmd, args };
    const p = spawn(w.cmd, w.args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out = fs.createWriteStream(opts.logFile, { flags: 'a' });
    let text = '';
    const onData = (b: Buffer) => {
      out.write(b);
      const s = b.toString('utf8');
      if (text.length < 1 << 20) text += s;
      onText(s);
    };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      p.on('exit', (code, signal) => {
        live.delete(child);
        resolve({ code, signal });
      });
      p.on('error', (e) => {
        onText(`[spawn error] ${e.message}\n`);
        live.delete(child);
        resolve({ code: -1, signal: null });
      });
    });
    void done.then(() => out.end());
    child = {
      pid: p.pid ?? -1,
      exited: done,
      hasExited: () => p.exitCode !== null || p.signalCode !== null,
      kill: (s = 'SIGTERM') => {
        if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
        try {
          process.kill(-p.pid, s);
        } catch {
          try {
            p.kill(s);
          } catch {
            /* gone */
          }
        }
      },
      tail: () => [...ring, ...(partial ? [partial] : [])].slice(-40),
      output: () => text,
    };
  }
  live.add(child);
  return child;
}

/** SIGTERM, then SIGKILL after graceMs. */
export async function stopTied(c: TiedChild, graceMs = 5000): Promise<void> {
  if (c.hasExited()) return;
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await c.exited;
  clearTimeout(t);
}
