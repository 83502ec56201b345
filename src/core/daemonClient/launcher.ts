import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import WebSocket from 'ws';
import { strataStateDir } from '../paths';
import { encodeFrame, PROTOCOL_VERSION } from '../protocol';
import { BackoffOptions } from './backoff';
import { SidecarClient } from './client';
import { SidecarError, SidecarIncompatibleError } from './errors';
import { fileSize, readSince } from '../logTail';
import { DAEMON_LOG_NAME, ensureStateDir, isLockLive, readSidecarLock, SidecarLock, withStateMutex } from './lockFile';

// Finding the one daemon of this user, or starting it. Any number of windows may call this at
// the same moment: the one that takes the start mutex spawns the daemon and waits for its lock
// file; the others wait on the mutex and then find that lock file. (The daemon itself also
// claims the lock under a mutex, so even a start that bypasses this path cannot make two.)

/** Exit status of a daemon that found another one running (see src/daemon/daemon.ts). */
const EXIT_ALREADY_RUNNING = 3;
const MAX_LOG_BYTES = 10 * 1024 * 1024;

export interface ConnectOrStartOptions {
  /** The bundled daemon, e.g. path.join(context.extensionPath, 'dist', 'sidecar.js'). */
  sidecarScript: string;
  /** Default: strataStateDir(). */
  stateDir?: string;
  /** Default: process.execPath (VS Code's Electron, run as Node through ELECTRON_RUN_AS_NODE). */
  nodePath?: string;
  nodeArgs?: string[];
  /** Daemon settings for a daemon this call starts (JSON, see DaemonOverrides in src/daemon/config.ts). */
  daemonConfig?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  clientName?: string;
  /** How long finding/starting and connecting may take. Default 30 s. */
  startTimeoutMs?: number;
  /** Replace a daemon of another protocol version now, even if other windows use it (the user confirmed). */
  forceReplace?: boolean;
  /** How long to wait for such a daemon to make way on its own. Default 5 s. */
  replaceWaitMs?: number;
  reconnect?: BackoffOptions | false;
  restorePlan?: boolean;
  log?: (msg: string) => void;
}

/** Connects to the running daemon, starting one if none runs. The client reconnects on its own. */
export async function connectOrStartSidecar(opts: ConnectOrStartOptions): Promise<SidecarClient> {
  const stateDir = opts.stateDir ?? strataStateDir(opts.env ?? process.env);
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const client = new SidecarClient({
    locate: () => locateOrStartDaemon({ ...opts, stateDir, startTimeoutMs: timeoutMs }),
    clientName: opts.clientName,
    reconnect: opts.reconnect,
    restorePlan: opts.restorePlan,
    log: opts.log,
  });
  await client.open(timeoutMs);
  return client;
}

/** The lock of a live daemon speaking our protocol, starting one if needed. */
export async function locateOrStartDaemon(opts: ConnectOrStartOptions & { stateDir: string }): Promise<SidecarLock> {
  const { stateDir } = opts;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  for (;;) {
    const lock = readSidecarLock(stateDir);
    if (lock && isLockLive(lock)) {
      if (lock.protocolVersion === PROTOCOL_VERSION) return lock;
      await retireIncompatible(lock, opts);
      continue;
    }
    if (Date.now() > deadline) throw new SidecarError('start-failed', `The Strata sidecar did not start in time; see ${path.join(stateDir, DAEMON_LOG_NAME)}.`);
    const found = await withStateMutex(
      stateDir,
      'sidecar.start',
      async () => {
        // Whoever held the mutex before us may have started it already.
        const again = readSidecarLock(stateDir);
        if (again && isLockLive(again)) return again;
        return spawnDaemon(opts, deadline);
      },
      { waitMs: Math.max(1000, deadline - Date.now()) },
    );
    if (found && found.protocolVersion === PROTOCOL_VERSION) return found;
  }
}

async function spawnDaemon(opts: ConnectOrStartOptions & { stateDir: string }, deadline: number): Promise<SidecarLock | undefined> {
  const { stateDir } = opts;
  ensureStateDir(stateDir);
  const logFile = path.join(stateDir, DAEMON_LOG_NAME);
  try {
    if (fs.statSync(logFile).size > MAX_LOG_BYTES) fs.renameSync(logFile, `${logFile}.1`);
  } catch {
    /* no log yet */
  }
  const offset = fileSize(logFile);
  const fd = fs.openSync(logFile, 'a', 0o600);
  const args = [...(opts.nodeArgs ?? []), opts.sidecarScript, '--state-dir', stateDir];
  if (opts.daemonConfig) args.push('--config', JSON.stringify(opts.daemonConfig));
  opts.log?.(`starting the Strata sidecar: ${opts.nodePath ?? process.execPath} ${args.join(' ')}`);
  let exit: { code: number | null; signal: string | null; error?: Error } | undefined;
  let child;
  try {
    // detached + own session: the daemon outlives this window (that is its point), and the
    // window's terminal or process group signals do not reach it. cwd in the state dir so that
    // it never holds a workspace folder busy.
    child = spawn(opts.nodePath ?? process.execPath, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...(opts.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      cwd: stateDir,
      windowsHide: true,
    });
  } finally {
    fs.closeSync(fd);
  }
  child.on('exit', (code, signal) => (exit = { code, signal }));
  child.on('error', (error) => (exit = { code: null, signal: null, error }));
  child.unref();
  const why = () => {
    const tail = readSince(logFile, offset, 64 * 1024)
      .split('\n')
      .filter((l) => l.trim())
      .slice(-8);
    return tail.length ? tail : undefined;
  };
  while (Date.now() < deadline) {
    const lock = readSidecarLock(stateDir);
    if (lock && lock.pid === child.pid && isLockLive(lock)) return lock;
    if (exit) {
      if (exit.code === EXIT_ALREADY_RUNNING) return undefined;
      const detail = exit.error ? exit.error.message : exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
      const tail = why();
      throw new SidecarError(
        'start-failed',
        `The Strata sidecar stopped right after starting (${detail})${tail ? `: ${tail[tail.length - 1]}` : ''}; see ${logFile}.`,
        tail,
      );
    }
    await sleep(25);
  }
  try {
    if (child.pid) process.kill(child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  throw new SidecarError('start-failed', `The Strata sidecar did not come up within the time allowed; see ${logFile}.`, why());
}

/**
 * Asks a daemon of another protocol version to make way (when its clients are gone, or now if
 * the user confirmed) and waits for it to go. The hello frame and close codes used here are
 * frozen across versions for exactly this purpose.
 */
async function retireIncompatible(lock: SidecarLock, opts: ConnectOrStartOptions & { stateDir: string }): Promise<void> {
  const mode = opts.forceReplace ? 'now' : 'when-idle';
  opts.log?.(
    `a Strata sidecar of protocol ${lock.protocolVersion} (pid ${lock.pid}) runs; this window speaks ${PROTOCOL_VERSION}: asking it to make way (${mode})`,
  );
  await new Promise<void>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${lock.port}/`, { headers: { authorization: `Bearer ${lock.token}` }, handshakeTimeout: 3000 });
    const t = setTimeout(() => ws.terminate(), 3000);
    ws.on('open', () =>
      ws.send(encodeFrame({ type: 'hello', protocolVersion: PROTOCOL_VERSION, retire: mode, client: { name: opts.clientName ?? 'strata', pid: process.pid } })),
    );
    ws.on('error', () => undefined);
    ws.on('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
  const until = Date.now() + (opts.replaceWaitMs ?? 5000);
  while (Date.now() < until) {
    if (!isLockLive(lock)) return;
    await sleep(100);
  }
  throw new SidecarIncompatibleError(lock.pid, lock.protocolVersion, PROTOCOL_VERSION);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
