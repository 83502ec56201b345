import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

// Running the installer's tools (git, npm, cmake, the fresh binaries): PATH lookup as a shell
// does it, output captured by line with a bounded tail, and cancellation that kills the whole
// tree a build starts.

/** Finds an executable the way a shell would, using env.PATH (and PATHEXT on Windows). */
export function findOnPath(cmd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const isWin = process.platform === 'win32';
  const exts = isWin ? (env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean) : [''];
  const candidates = (dir: string): string[] => (isWin && !path.extname(cmd) ? exts.map((e) => path.join(dir, cmd + e)) : [path.join(dir, cmd)]);
  const executable = (p: string): boolean => {
    try {
      const st = fs.statSync(p);
      if (!st.isFile()) return false;
      if (!isWin) fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (cmd.includes('/') || (isWin && cmd.includes('\\'))) return executable(cmd) ? cmd : undefined;
  const pathVar = env.PATH ?? env.Path ?? '';
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue;
    for (const c of candidates(dir)) if (executable(c)) return c;
  }
  return undefined;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called per output line (stdout and stderr interleaved as they arrive). */
  onLine?: (line: string) => void;
  /** Everything the process writes is also appended here. */
  log?: fs.WriteStream;
  timeoutMs?: number;
  /** Windows .cmd shims (npm) need a shell since Node 20's CVE-2024-27980 fix. */
  shell?: boolean;
  /**
   * POSIX: start the child in its own process group, so that cancelling kills the compilers it
   * started too. The price: a terminal's Ctrl-C no longer reaches them, so use it only when
   * someone will cancel through the signal.
   */
  ownGroup?: boolean;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** Last ~40 lines of stdout+stderr. */
  tail: string;
  aborted: boolean;
  timedOut: boolean;
}

const TAIL_LINES = 40;
const STDOUT_LIMIT = 1 << 20;

/** Kills a process and, where it can, everything it started (cmake -> make -> cc1plus). */
function killTree(pid: number, group: boolean): void {
  try {
    if (process.platform === 'win32') {
      spawn('taskkill', ['/pid', String(pid), '/T', '/F'], { stdio: 'ignore', windowsHide: true });
    } else {
      const target = group ? -pid : pid;
      process.kill(target, 'SIGTERM');
      setTimeout(() => {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 3000).unref();
    }
  } catch {
    /* already gone */
  }
}

/** Runs a command; resolves with its exit status, rejects only when it cannot be started. */
export function runProcess(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      resolve({ code: null, signal: null, stdout: '', tail: '', aborted: true, timedOut: false });
      return;
    }
    // With a shell, Windows re-parses the command line: quote what has spaces (npm lives in
    // "C:\Program Files\nodejs").
    const q = (s: string): string => (opts.shell && /[\s&()]/.test(s) ? `"${s}"` : s);
    const child = spawn(q(cmd), args.map(q), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
      shell: opts.shell ?? false,
      detached: !!opts.ownGroup && process.platform !== 'win32',
    });
    let stdout = '';
    const tail: string[] = [];
    let aborted = false;
    let timedOut = false;
    const partial: Record<'out' | 'err', string> = { out: '', err: '' };
    const onData = (which: 'out' | 'err') => (chunk: Buffer) => {
      opts.log?.write(chunk);
      const text = chunk.toString('utf8');
      if (which === 'out' && stdout.length < STDOUT_LIMIT) stdout += text;
      const lines = (partial[which] + text).split(/\r?\n|\r/);
      partial[which] = lines.pop() ?? '';
      for (const line of lines) emit(line);
    };
    const emit = (line: string): void => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      opts.onLine?.(line);
    };
    child.stdout!.on('data', onData('out'));
    child.stderr!.on('data', onData('err'));
    const onAbort = (): void => {
      aborted = true;
      if (child.pid !== undefined) killTree(child.pid, !!opts.ownGroup);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            if (child.pid !== undefined) killTree(child.pid, !!opts.ownGroup);
          }, opts.timeoutMs)
        : undefined;
    child.on('error', (err) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      for (const k of ['out', 'err'] as const) if (partial[k]) emit(partial[k]);
      resolve({ code, signal, stdout, tail: tail.join('\n'), aborted, timedOut });
    });
  });
}
