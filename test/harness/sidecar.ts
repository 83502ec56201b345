import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ServerPlan } from '../../src/core/protocol';
import { ConnectOrStartOptions, connectOrStartSidecar, SidecarClient } from '../../src/core/daemonClient';
import { readSidecarLock } from '../../src/core/daemonClient/lockFile';
import { isPidAlive } from '../../src/core/daemonClient/processInfo';
import { ChildRegistry } from '../../src/daemon/childRegistry';
import { getLlamaBinaries } from './llamaBinaries';

// Sidecar daemons for tests: the real bundle (built here with the same esbuild settings as
// dist/sidecar.js), a private state dir per test, short timers, and a cleanup that kills the
// daemon and any llama-server it left, whatever state the test ended in.

const REPO = path.resolve(__dirname, '..', '..');
let bundle: Promise<string> | undefined;

/** Bundles src/daemon/main.ts once per test process. */
export function sidecarBundle(): Promise<string> {
  bundle ??= (async () => {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-sidecar-bundle-'));
    const outfile = path.join(outDir, 'sidecar.js');
    await esbuild.build({
      entryPoints: [path.join(REPO, 'src', 'daemon', 'main.ts')],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile,
      logLevel: 'warning',
      external: ['vscode'],
    });
    process.on('exit', () => fs.rmSync(outDir, { recursive: true, force: true }));
    return outfile;
  })();
  return bundle;
}

/** Timers short enough for tests, long enough for 2 busy cores. */
export const TEST_DAEMON_CONFIG = {
  idleExitMs: 60_000,
  restart: { initialMs: 200, maxMs: 2000, factor: 2, jitter: 0 },
  maxCrashes: 4,
  stableMs: 30_000,
  stopGraceMs: 5000,
};

export function makeStateDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'strata-sidecar-state-'));
}

export async function connectTestSidecar(
  stateDir: string,
  extra: Partial<ConnectOrStartOptions> & { daemonConfig?: Record<string, unknown> } = {},
): Promise<SidecarClient> {
  return connectOrStartSidecar({
    sidecarScript: await sidecarBundle(),
    stateDir,
    clientName: 'test',
    startTimeoutMs: 60_000,
    reconnect: { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 },
    ...extra,
    daemonConfig: { ...TEST_DAEMON_CONFIG, ...(extra.daemonConfig ?? {}) },
  });
}

/** The llama-server plan tests use: the tiny model, CPU, small context. */
export async function tinyPlan(model: string, extra: Partial<ServerPlan> = {}): Promise<ServerPlan> {
  const bins = await getLlamaBinaries();
  return { binaryPath: bins.serverPath, modelPath: model, args: ['--no-repack', '-t', '2', '-c', '2048', '--no-webui'], ...extra };
}

/** Writes a fake llama-server that exits at once (a fault the real one cannot be made to produce on demand). */
export function writeCrashingBinary(dir: string): string {
  const p = path.join(dir, 'fake-llama-server-crash.sh');
  fs.writeFileSync(
    p,
    [
      '#!/bin/sh',
      "# FAKE llama-server for fault injection: exits at once, to test the sidecar's crash-loop stop.",
      'echo "fake llama-server: simulated crash on start" >&2',
      'exit 7',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return p;
}

export function daemonPidOf(stateDir: string): number | undefined {
  return readSidecarLock(stateDir)?.pid;
}

/** pids of llama-servers the daemon(s) of this state dir started and that still run. */
export function liveChildren(stateDir: string): number[] {
  return new ChildRegistry(path.join(stateDir, 'children'))
    .list()
    .map((r) => r.pid)
    .filter(isPidAlive);
}

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 20): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Kills whatever a test left in this state dir (daemon, llama-servers) and removes the dir. */
export async function cleanupStateDir(stateDir: string, clients: SidecarClient[] = []): Promise<void> {
  for (const c of clients) c.close();
  const pids = new Set<number>();
  const lock = readSidecarLock(stateDir);
  if (lock) pids.add(lock.pid);
  for (const rec of new ChildRegistry(path.join(stateDir, 'children')).list()) {
    pids.add(rec.pid);
    pids.add(rec.daemonPid);
  }
  for (const pid of pids) {
    if (pid === process.pid || !isPidAlive(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await waitUntil('test processes to exit', () => [...pids].every((p) => p === process.pid || !isPidAlive(p)), 5000).catch(() => undefined);
  fs.rmSync(stateDir, { recursive: true, force: true });
}
