import { ChildProcess, spawn } from 'child_process';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import { SecretFile, writeSecretFile } from '../core/secretFile';
import { isPidAlive } from '../core/daemonClient/processInfo';
import { ChildRegistry } from './childRegistry';
import { GuardedProcess, LifetimeGuard } from './lifetimeGuard';
import { LoadProgress, LoadProgressParser } from './loadProgress';
import { rotateIfLarge } from './logger';
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
  /** Given to llama-server through --api-key-file (a 0600 file, removed when it exits), never on its command line. */
  apiKey?: string;
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

export interface LlamaProcessEvents {
  line: [string];
  progress: [LoadProgress];
  readyHint: [];
}

const MAX_SERVER_LOG_BYTES = 20 * 1024 * 1024;

/** What llama-server's router writes to a child's stdin to stop it. */
const ROUTER_EXIT_COMMAND = 'cmd_router_to_child:exit\n';

export class LlamaProcess extends EventEmitter<LlamaProcessEvents> {
  readonly exited: Promise<ExitInfo>;
  readonly parser = new LoadProgressParser();
  private readonly ring: LogRing;
  /** This process's own last lines: what explains its exit (the shared ring mixes starts). */
  private readonly own = new LogRing(80);
  private child?: ChildProcess;
  private guarded?: GuardedProcess;
  private watchdog?: Watchdog;
  private logStream?: fs.WriteStream;
  private tailer?: FileTailer;
  private keyFile?: SecretFile;
  private exitInfo?: ExitInfo;
  private resolveExit!: (info: ExitInfo) => void;
  readonly pid: number | undefined;

  private constructor(private readonly opts: LlamaProcessOptions) {
    super();
    this.ring = opts.ring;
    this.exited = new Promise<ExitInfo>((resolve) => (this.resolveExit = resolve));
    this.pid = this.launch();
  }

  static start(opts: LlamaProcessOptions): LlamaProcess {
    return new LlamaProcess(opts);
  }

  tail(n: number): string[] {
    return this.own.tail(n);
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  private finish(info: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = info;
    this.cleanup();
    this.resolveExit(info);
  }

  private launch(): number | undefined {
    const { opts } = this;
    let args = opts.args;
    if (opts.apiKey !== undefined) {
      try {
        this.keyFile = writeSecretFile(opts.apiKey, { name: 'llama-server-api-key' });
      } catch (e) {
        queueMicrotask(() => this.finish({ code: null, signal: null, spawnError: e as NodeJS.ErrnoException }));
        return undefined;
      }
      args = [...args, '--api-key-file', this.keyFile.path];
    }
    rotateIfLarge(opts.logFile, MAX_SERVER_LOG_BYTES);
    const header = `\n===== ${new Date().toISOString()} llama-server: ${opts.binaryPath} ${args.join(' ')}\n`;
    if (opts.guard?.kind === 'spawn') return this.launchGuarded(opts.guard, args, header);
    const wrapped = opts.guard?.kind === 'wrap' ? opts.guard.wrap(opts.binaryPath, args) : { cmd: opts.binaryPath, args };
    // detached: its own process group, so a Ctrl-C aimed at a daemon run in a terminal does not
    // hit it behind the supervisor's back, and a kill of the group also gets any helpers it forks.
    // stdin stays an open pipe: router children exit when it closes (see loadProgress.ts).
    const child = spawn(wrapped.cmd, wrapped.args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, detached: true, windowsHide: true });
    this.child = child;
    // 'close' (not 'exit') so that the last lines of output are in before anyone reads them.
    child.on('close', (code, signal) => this.finish({ code, signal }));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) this.finish({ code: null, signal: null, spawnError: err });
    });
    if (child.pid === undefined) return undefined;
    this.guardAndRecord(child.pid);
    child.stdin?.on('error', () => undefined);
    try {
      this.logStream = fs.createWriteStream(opts.logFile, { flags: 'a', mode: 0o600 });
      this.logStream.on('error', () => undefined);
      this.logStream.write(header);
    } catch {
      this.logStream = undefined;
    }
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      stream.setEncoding('utf8');
      const splitter = new LineSplitter((line) => this.onLine(line, true));
      stream.on('data', (chunk: string) => this.onChunk(splitter, chunk));
      stream.on('end', () => splitter.flush());
    }
    return child.pid;
  }

  /** The native addon starts it; output goes straight to the log file, which we tail. */
  private launchGuarded(guard: Extract<LifetimeGuard, { kind: 'spawn' }>, args: string[], header: string): number | undefined {
    const { opts } = this;
    let offset = 0;
    try {
      fs.appendFileSync(opts.logFile, header, { mode: 0o600 });
      offset = fs.statSync(opts.logFile).size;
    } catch {
      /* the tailer starts at 0 then; better a repeated line than none */
    }
    let g: GuardedProcess;
    try {
      g = guard.spawn(opts.binaryPath, args, { env: opts.env, outputFile: opts.logFile });
    } catch (e) {
      queueMicrotask(() => this.finish({ code: null, signal: null, spawnError: e as NodeJS.ErrnoException }));
      return undefined;
    }
    this.guarded = g;
    this.guardAndRecord(g.pid);
    const splitter = new LineSplitter((line) => this.onLine(line, false));
    this.tailer = new FileTailer(opts.logFile, offset, (chunk) => this.onChunk(splitter, chunk));
    void g.exited.then(async (r) => {
      await this.tailer?.drain();
      splitter.flush();
      this.finish(r);
    });
    return g.pid;
  }

  private guardAndRecord(pid: number): void {
    // Record first: if the daemon dies in the next microseconds, the pid file is what remains.
    let startTime: string | undefined;
    try {
      startTime = this.opts.registry.record(pid, this.opts.binaryPath).startTime;
    } catch {
      /* a full disk must not stop the server; the watchdog still guards it */
    }
    if (this.opts.watchdog) this.watchdog = startWatchdog(pid, startTime);
  }

  private onChunk(splitter: LineSplitter, chunk: string): void {
    splitter.push(chunk);
    const p = this.parser.partial(splitter.partial);
    if (p) this.emit('progress', p);
  }

  private onLine(line: string, writeToLog: boolean): void {
    const parsed = this.parser.line(line);
    if (!parsed.internal) {
      this.ring.push(line);
      this.own.push(line);
      if (writeToLog) this.logStream?.write(line + '\n');
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
    if (this.opts.routerMode) this.child?.stdin?.write(ROUTER_EXIT_COMMAND, () => undefined);
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
    if (this.exitInfo) return;
    if (this.guarded) {
      this.guarded.kill(sig);
      return;
    }
    const pid = this.child?.pid;
    if (pid === undefined) return;
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
    // Only when it is really gone: otherwise keep the record so a successor can reap it.
    if (this.pid !== undefined && !isPidAlive(this.pid)) this.opts.registry.remove(this.pid);
    this.watchdog?.release();
    this.logStream?.end();
    this.tailer?.stop();
    this.keyFile?.remove();
  }
}

/** Follows a file that another process appends to (no pipes with the native spawn). */
class FileTailer {
  private timer?: NodeJS.Timeout;
  private reading = false;
  private stopped = false;

  constructor(
    private readonly file: string,
    private offset: number,
    private readonly onChunk: (s: string) => void,
    intervalMs = 100,
  ) {
    this.timer = setInterval(() => void this.read(), intervalMs);
  }

  /** Reads what is left (after the writer exited). */
  async drain(): Promise<void> {
    while (this.reading) await new Promise((r) => setTimeout(r, 5));
    await this.read();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async read(): Promise<void> {
    if (this.reading || this.stopped) return;
    this.reading = true;
    try {
      const fh = await fs.promises.open(this.file, 'r');
      try {
        for (;;) {
          const buf = Buffer.alloc(64 * 1024);
          const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
          if (bytesRead <= 0) break;
          this.offset += bytesRead;
          // A multi-byte character split across reads is rare in llama-server's ASCII logs.
          this.onChunk(buf.subarray(0, bytesRead).toString('utf8'));
        }
      } finally {
        await fh.close();
      }
    } catch {
      /* not there yet */
    } finally {
      this.reading = false;
    }
  }
}
