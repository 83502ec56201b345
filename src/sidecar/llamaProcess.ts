import { ChildProcess, spawn } from 'child_process';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import { isPidAlive } from '../core/sidecar/processInfo';
import { ChildRegistry } from './childRegistry';
import { LifetimeGuard } from './lifetimeGuard';
import { LoadProgress, LoadProgressParser } from './loadProgress';
import { LineSplitter, LogRing } from './logRing';
import { startWatchdog, Watchdog } from './watchdog';

// One llama-server process: started with every orphan defence in place, its output split into
// lines (kept, written to the server log, parsed for progress), its end reported once.

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when it never ran (spawn failed). */
  spawnError?: NodeJS.ErrnoException;
}

export interface LlamaProcessOptions {
  binaryPath: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Appended to; one header line per start. */
  logFile: string;
  registry: ChildRegistry;
  guard?: LifetimeGuard;
  /** The watchdog process (see watchdog.ts); off only to test the other defences alone. */
  watchdog: boolean;
  /** Lines kept in memory for status and crash messages. */
  ring: LogRing;
  /** Started as a router child (see loadProgress.ts): it then also wants the exit command to stop. */
  routerMode?: boolean;
}

/** What llama-server's router writes to a child's stdin to stop it. */
const ROUTER_EXIT_COMMAND = 'cmd_router_to_child:exit\n';

export interface LlamaProcessEvents {
  line: [string];
  progress: [LoadProgress];
  readyHint: [];
}

export class LlamaProcess extends EventEmitter<LlamaProcessEvents> {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  readonly parser = new LoadProgressParser();
  private readonly ring: LogRing;
  /** This process's own last lines: what explains its exit (the shared ring mixes starts). */
  private readonly own = new LogRing(80);
  private watchdog?: Watchdog;
  private logStream?: fs.WriteStream;
  private exitInfo?: ExitInfo;

  private constructor(child: ChildProcess, private readonly opts: LlamaProcessOptions) {
    super();
    this.child = child;
    this.ring = opts.ring;
    this.exited = new Promise<ExitInfo>((resolve) => {
      let done = false;
      const finish = (info: ExitInfo) => {
        if (done) return;
        done = true;
        this.exitInfo = info;
        this.cleanup();
        resolve(info);
      };
      // 'close' (not 'exit') so that the last lines of output are in before anyone reads them.
      child.on('close', (code, signal) => finish({ code, signal }));
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (child.pid === undefined) finish({ code: null, signal: null, spawnError: err });
      });
    });
  }

  static start(opts: LlamaProcessOptions): LlamaProcess {
    const wrapped = opts.guard ? opts.guard.wrap(opts.binaryPath, opts.args) : { cmd: opts.binaryPath, args: opts.args };
    // detached: its own process group, so a Ctrl-C aimed at a daemon run in a terminal does not
    // hit it behind the supervisor's back, and a kill of the group also gets any helpers it forks.
    // stdin stays an open pipe: builds with router mode exit when it closes (see loadProgress.ts).
    const child = spawn(wrapped.cmd, wrapped.args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env,
      detached: true,
      windowsHide: true,
    });
    const p = new LlamaProcess(child, opts);
    if (child.pid !== undefined) p.started(child.pid);
    return p;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  tail(n: number): string[] {
    return this.own.tail(n);
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  private started(pid: number): void {
    // Record first: if the daemon dies in the next microseconds, the pid file is what remains.
    let startTime: string | undefined;
    try {
      startTime = this.opts.registry.record(pid, this.opts.binaryPath).startTime;
    } catch {
      /* a full disk must not stop the server; the watchdog still guards it */
    }
    this.opts.guard?.attach?.(pid);
    if (this.opts.watchdog) this.watchdog = startWatchdog(pid, startTime);
    this.child.stdin?.on('error', () => undefined);
    try {
      this.logStream = fs.createWriteStream(this.opts.logFile, { flags: 'a', mode: 0o600 });
      this.logStream.on('error', () => undefined);
      this.logStream.write(`\n===== ${new Date().toISOString()} llama-server pid ${pid}: ${this.opts.binaryPath} ${redact(this.opts.args).join(' ')}\n`);
    } catch {
      this.logStream = undefined;
    }
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (!stream) continue;
      stream.setEncoding('utf8');
      const splitter = new LineSplitter((line) => this.onLine(line));
      stream.on('data', (chunk: string) => {
        splitter.push(chunk);
        const p = this.parser.partial(splitter.partial);
        if (p) this.emit('progress', p);
      });
      stream.on('end', () => splitter.flush());
    }
  }

  private onLine(line: string): void {
    const parsed = this.parser.line(line);
    if (!parsed.internal) {
      this.ring.push(line);
      this.own.push(line);
      this.logStream?.write(line + '\n');
      this.emit('line', line);
    }
    if (parsed.progress) this.emit('progress', parsed.progress);
    if (parsed.readyHint) this.emit('readyHint');
  }

  /** SIGTERM (llama-server finishes cleanly), then SIGKILL after graceMs. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    // A ready router child waits for its stdin thread after SIGTERM; the exit command ends that
    // thread, so the stop takes milliseconds instead of running into the SIGKILL.
    if (this.opts.routerMode) this.child.stdin?.write(ROUTER_EXIT_COMMAND, () => undefined);
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const info = await this.exited;
    clearTimeout(t);
    return info;
  }

  /** For the daemon's last moments: synchronous, no waiting. */
  killNow(): void {
    this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined || this.exitInfo) return;
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    }
  }

  private cleanup(): void {
    const pid = this.child.pid;
    if (pid !== undefined) {
      // Only when it is really gone: otherwise keep the record so a successor can reap it.
      if (!isPidAlive(pid)) this.opts.registry.remove(pid);
    }
    this.watchdog?.release();
    this.logStream?.end();
  }
}

/** The API key must not end up in a log file that outlives it. */
export function redact(args: string[]): string[] {
  return args.map((a, i) => (args[i - 1] === '--api-key' ? '***' : a));
}
