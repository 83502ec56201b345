import * as cp from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { PassThrough, type Readable, type Writable } from 'stream';
import { strataStateDir } from '../paths';
import { ChildRegistry } from '../daemonClient/childRegistry';
import { processExe, signalProcess } from '../daemonClient/processInfo';
import { nativeAddon, type NativeAddon } from './loader';
import type { GuardKind } from './types';

// spawnGuarded: start a process that must not outlive this one (a 40 GB llama-server must not
// survive a crashed sidecar).
//
// With the addon the kernel enforces it: PR_SET_PDEATHSIG(SIGKILL) on Linux, a kill-on-close job
// object on Windows, a kqueue watcher process on macOS. The addon then also reports the exit
// (there is no ChildProcess object): see native/src/addon.cpp.
//
// Without it ('pidfile'): child_process.spawn, a process 'exit' hook that SIGKILLs what is left
// (covers normal exits and uncaught exceptions, not SIGKILL or a crash), and a pid file per child
// (the sidecar's ChildRegistry, src/core/daemonClient/childRegistry.ts) so that reapOrphans(), run by
// the next owner at start, kills children whose owner died. Children can therefore outlive a
// SIGKILLed owner until the next start.

/**
 * Where a stdio stream goes: nowhere, ours, a stream for this process ('pipe': the child's
 * `stdin`/`stdout`/`stderr`), a descriptor of ours (POSIX; on Windows only 0-2), or a file
 * (appended to).
 */
export type StdioTarget = 'ignore' | 'inherit' | 'pipe' | number | { path: string };

export interface SpawnGuardedOptions {
  cwd?: string;
  /** The child's whole environment (default: ours). */
  env?: NodeJS.ProcessEnv;
  stdin?: StdioTarget;
  stdout?: StdioTarget;
  stderr?: StdioTarget;
  /** Own process group (default true), so kill() reaches anything the child starts (POSIX). */
  newProcessGroup?: boolean;
  /** Fallback only: where pid files go (default: <state dir>/guarded-children). */
  pidFileDir?: string;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface GuardedChild {
  readonly pid: number;
  readonly guard: GuardKind;
  /** Resolves once, when the child has exited (and has been reaped). Never rejects. */
  readonly exited: Promise<ChildExit>;
  /** The 'pipe' streams (null for other targets). Errors are swallowed: a dead child just ends them. */
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Set once exited. */
  exitStatus(): ChildExit | undefined;
  /** Signals the child (its process group when it has one). False after exit or on error. */
  kill(signal?: NodeJS.Signals | number): boolean;
  /** Like ChildProcess.ref()/unref(): whether a running child (and its pipes) keep the event loop alive. */
  ref(): void;
  unref(): void;
}

/**
 * Starts `file` with `args`, tied to this process. Throws synchronously (with `code`, e.g.
 * 'ENOENT', and `syscall`) when it cannot start, unlike child_process.spawn's 'error' event.
 * Call it from the main thread: on Linux the tie is to the thread that starts the child.
 */
export function spawnGuarded(file: string, args: string[], opts: SpawnGuardedOptions = {}): GuardedChild {
  const env = opts.env ?? process.env;
  if (opts.cwd !== undefined && !isDirectory(opts.cwd)) {
    throw spawnError(`spawn ${file} ENOENT: cannot enter ${opts.cwd}`, 'ENOENT', 'chdir', file);
  }
  const resolved = resolveExecutable(file, env, opts.cwd);
  const addon = nativeAddon();
  return addon ? nativeSpawn(addon, resolved, args, opts, env) : fallbackSpawn(resolved, args, opts, env);
}

/** What the shell would run for `file`: a path as is (against cwd), else a PATH search. */
export function resolveExecutable(file: string, env: NodeJS.ProcessEnv, cwd?: string): string {
  const win = process.platform === 'win32';
  const exts = win ? ['', ...(env.PATHEXT ?? env.Pathext ?? '.COM;.EXE;.BAT;.CMD').split(';').filter(Boolean)] : [''];
  const isExec = (p: string) => {
    try {
      if (!fs.statSync(p).isFile()) return false;
      if (!win) fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (file.includes('/') || (win && file.includes('\\'))) {
    const full = path.resolve(cwd ?? process.cwd(), file);
    for (const e of exts) if (isExec(full + e)) return full + e;
    throw spawnError(`spawn ${file} ENOENT`, 'ENOENT', 'spawn', file);
  }
  const pathVar = env.PATH ?? env.Path ?? '';
  for (const dir of pathVar.split(path.delimiter).filter(Boolean)) {
    for (const e of exts) {
      const p = path.join(path.resolve(cwd ?? process.cwd(), dir), file + e);
      if (isExec(p)) return p;
    }
  }
  throw spawnError(`spawn ${file} ENOENT: not found in PATH`, 'ENOENT', 'spawn', file);
}

function nativeSpawn(addon: NativeAddon, file: string, args: string[], opts: SpawnGuardedOptions, env: NodeJS.ProcessEnv): GuardedChild {
  const pipes = new LocalPipes();
  const slot = (t: StdioTarget | undefined, n: 0 | 1 | 2): number | string | null | { connect: string } => {
    if (t === undefined || t === 'ignore') return null;
    if (t === 'inherit') return n;
    if (t === 'pipe') return { connect: pipes.listen(n) };
    return typeof t === 'number' ? t : t.path;
  };
  const group = opts.newProcessGroup ?? true;
  let status: ChildExit | undefined;
  let resolveExit!: (e: ChildExit) => void;
  const exited = new Promise<ChildExit>((r) => (resolveExit = r));
  let pid: number;
  try {
    pid = addon.spawnGuarded(
      file,
      args,
      {
        cwd: opts.cwd,
        env: Object.entries(env)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k}=${v}`),
        stdio: [slot(opts.stdin, 0), slot(opts.stdout, 1), slot(opts.stderr, 2)],
        newProcessGroup: group,
      },
      (code, signal) => {
        status = { code, signal: signal === null ? null : signalName(signal) };
        resolveExit(status);
      },
    );
  } catch (e) {
    pipes.abort();
    throw e;
  }
  return {
    pid,
    guard: addon.guardKind,
    exited,
    stdin: pipes.streams[0] as Writable | null,
    stdout: pipes.streams[1] as Readable | null,
    stderr: pipes.streams[2] as Readable | null,
    exitStatus: () => status,
    kill: (signal = 'SIGTERM') => (status ? false : signalProcess(pid, group, signal)),
    ref: () => {
      addon.setExitWatchRef(pid, true);
      pipes.ref(true);
    },
    unref: () => {
      addon.setExitWatchRef(pid, false);
      pipes.ref(false);
    },
  };
}

/**
 * 'pipe' for the native spawn. The addon cannot hand JS a pipe portably (on Windows a HANDLE is
 * not a descriptor Node can wrap), so this process listens on a local stream server (a Unix
 * socket in a fresh 0700 directory, or a named pipe with a random name), the addon connects to it
 * and gives that connection to the child, and the accepted socket here becomes the stream. The
 * listening happens synchronously inside server.listen(), so the addon's connect cannot miss it.
 */
class LocalPipes {
  readonly streams: (PassThrough | null)[] = [null, null, null];
  private dir: string | undefined;
  private servers: net.Server[] = [];
  private sockets: net.Socket[] = [];
  private refd = true;

  listen(slot: 0 | 1 | 2): string {
    let name: string;
    if (process.platform === 'win32') {
      name = String.raw`\\.\pipe\strata-${process.pid}-${crypto.randomBytes(16).toString('hex')}`;
    } else {
      this.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'strata-io-')); // 0700: nobody else can connect
      name = path.join(this.dir, `${slot}.sock`);
    }
    const stream = new PassThrough();
    stream.on('error', () => {}); // a write after the child is gone must not crash us
    const server = net.createServer((sock) => {
      server.close(); // one connection: the child's
      this.sockets.push(sock);
      if (!this.refd) sock.unref();
      sock.on('error', () => stream.end());
      if (slot === 0) stream.pipe(sock);
      else sock.pipe(stream);
    });
    server.on('close', () => this.cleanUp());
    server.on('error', () => stream.end());
    server.listen(name);
    this.servers.push(server);
    this.streams[slot] = stream;
    return name;
  }

  ref(on: boolean): void {
    this.refd = on;
    for (const s of [...this.servers, ...this.sockets]) {
      if (on) s.ref();
      else s.unref();
    }
  }

  abort(): void {
    for (const s of this.servers) s.close();
    for (const st of this.streams) st?.destroy();
    this.cleanUp();
  }

  private cleanUp(): void {
    if (this.dir && this.servers.every((s) => !s.listening)) {
      fs.rmSync(this.dir, { recursive: true, force: true });
      this.dir = undefined;
    }
  }
}

// ---- fallback: child_process + pid files -------------------------------------------------------

const fallbackChildren = new Map<number, { group: boolean; registry: ChildRegistry }>();
let exitHookInstalled = false;

export function defaultPidFileDir(): string {
  return path.join(strataStateDir(), 'guarded-children');
}

function fallbackSpawn(file: string, args: string[], opts: SpawnGuardedOptions, env: NodeJS.ProcessEnv): GuardedChild {
  const opened: number[] = [];
  const slot = (t: StdioTarget | undefined, n: number): cp.StdioNull | cp.StdioPipe | number => {
    if (t === undefined || t === 'ignore') return 'ignore';
    if (t === 'inherit') return 'inherit';
    if (t === 'pipe') return 'pipe';
    if (typeof t === 'number') return t;
    const fd = fs.openSync(t.path, n === 0 ? 'r' : 'a');
    opened.push(fd);
    return fd;
  };
  const group = opts.newProcessGroup ?? true;
  let child: cp.ChildProcess;
  try {
    child = cp.spawn(file, args, {
      cwd: opts.cwd,
      env,
      stdio: [slot(opts.stdin, 0), slot(opts.stdout, 1), slot(opts.stderr, 2)],
      detached: group && process.platform !== 'win32',
      windowsHide: true,
    });
  } finally {
    for (const fd of opened) fs.closeSync(fd);
  }
  child.stdin?.on('error', () => {}); // EPIPE after the child is gone, as with the native path
  const pid = child.pid;
  if (pid === undefined) {
    child.on('error', () => {}); // reported by the throw below
    throw spawnError(`spawn ${file} failed`, 'ESPAWN', 'spawn', file);
  }

  const registry = new ChildRegistry(opts.pidFileDir ?? defaultPidFileDir());
  // What the kernel says it runs (the interpreter of a script, not the script), for the reaper's
  // identity check; spawn() has returned, so the exec is done.
  registry.record(pid, processExe(pid) ?? file, { group });
  fallbackChildren.set(pid, { group, registry });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const [p, c] of fallbackChildren) {
        signalProcess(p, c.group, 'SIGKILL');
        c.registry.remove(p);
      }
    });
  }

  let status: ChildExit | undefined;
  const exited = new Promise<ChildExit>((resolve) => {
    child.on('exit', (code, signal) => {
      status = { code, signal };
      fallbackChildren.delete(pid);
      registry.remove(pid);
      resolve(status);
    });
  });
  return {
    pid,
    guard: 'pidfile',
    exited,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    exitStatus: () => status,
    kill: (signal = 'SIGTERM') => (status ? false : signalProcess(pid, group, signal)),
    ref: () => child.ref(),
    unref: () => child.unref(),
  };
}

/**
 * Kills children that a fallback-guarded owner left behind when it died (SIGKILL to their process
 * group), and removes their pid files: ChildRegistry.reapStale with no grace. A child is killed
 * only if its identity still matches the record (start time, boot id, executable), so a pid
 * reused by an unrelated process is never touched; where identity cannot be checked the record is
 * dropped and the child left alone. `kept`: records whose owner still runs.
 */
export async function reapOrphans(dir: string = defaultPidFileDir()): Promise<{ killed: number[]; kept: number; dropped: number }> {
  const out = { killed: [] as number[], kept: 0, dropped: 0 };
  for (const { rec, verdict } of await new ChildRegistry(dir).reapStale({ graceMs: 0 })) {
    if (verdict === 'owned') out.kept++;
    else if (verdict === 'ours') out.killed.push(rec.pid);
    else out.dropped++;
  }
  return out;
}

// ---- helpers ------------------------------------------------------------------------------------

function signalName(n: number): NodeJS.Signals | null {
  const entry = Object.entries(os.constants.signals).find(([, v]) => v === n);
  return entry ? (entry[0] as NodeJS.Signals) : null;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function spawnError(message: string, code: string, syscall: string, file: string): NodeJS.ErrnoException {
  const e = new Error(message) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  e.path = file;
  return e;
}
