import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isAlive } from '../../src/core/native';
import { _resetNativeForTests, loadNative } from '../../src/core/native/loader';

export const repoRoot = path.resolve(__dirname, '..', '..');

let built: string | undefined;

/**
 * The addon under test. STRATA_NATIVE=<file.node> (set by scripts/test-native-asan.sh) names a
 * prebuilt one; otherwise `cmake-js compile` brings native/build up to date (incremental: about
 * a second when nothing changed).
 */
export function addonPath(): string {
  if (built) return built;
  const explicit = process.env.STRATA_NATIVE;
  if (explicit && explicit.endsWith('.node')) return (built = path.resolve(explicit));
  const r = spawnSync(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'compile', '-d', 'native', '-O', 'native/build'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`native build failed:\n${r.stdout}\n${r.stderr}`);
  return (built = path.join(repoRoot, 'native', 'build', 'Release', 'strata_native.node'));
}

/** The node-free CLI built next to the addon (STRATA_PROBE_CLI overrides). */
export function cliPath(): string {
  return process.env.STRATA_PROBE_CLI || path.join(path.dirname(addonPath()), process.platform === 'win32' ? 'strata_probe.exe' : 'strata_probe');
}

/** Loads the addon under test into this process (forgetting any earlier decision). */
export function useAddon(): void {
  const file = addonPath();
  _resetNativeForTests();
  const st = loadNative(repoRoot, { STRATA_NATIVE: file });
  if (!st.loaded) throw new Error(`addon did not load: ${st.reason}`);
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `strata-${prefix}-`));
}

/** Polls until `pid` is gone (or a zombie); returns the milliseconds it took. */
export async function waitDead(pid: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (isAlive(pid)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

/** Runs a TypeScript fixture in a separate node process (tsx), collecting stdout lines. */
export function startFixture(script: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(__dirname, 'fixtures', script), ...args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  /** Resolves with the first `n` JSON lines printed by the fixture. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each fixture prints its own shape; the tests destructure it
  const lines = async (n: number, timeoutMs = 20000): Promise<any[]> => {
    const t0 = Date.now();
    for (;;) {
      const parsed = out.split('\n').filter((l) => l.startsWith('{'));
      if (parsed.length >= n) return parsed.slice(0, n).map((l) => JSON.parse(l));
      if (child.exitCode !== null || Date.now() - t0 > timeoutMs) {
        throw new Error(`fixture ${script} printed ${parsed.length}/${n} lines (exit ${child.exitCode}):\n${out}\n${err}`);
      }
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  return { child, lines, exited, stderr: () => err, stdout: () => out };
}

/** Compiles a fake GPU runtime from test/native/fakes into `dir/name`. */
export function buildFake(source: string, dir: string, name: string, defines: string[] = []): string {
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, name);
  // No -soname on purpose: the fake must never stand in for a real "libcuda.so.1" looked up
  // by name later in the same process.
  const r = spawnSync('cc', ['-shared', '-fPIC', '-O1', '-o', out, path.join(__dirname, 'fakes', source), ...defines.map((d) => `-D${d}`)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`cc ${source} failed:\n${r.stderr}`);
  return out;
}

export function memTotalFromProc(): number {
  const m = /^MemTotal:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  if (!m) throw new Error('no MemTotal in /proc/meminfo');
  return Number(m[1]) * 1024;
}
