import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { isAlive, loadNative, nativeStatus, probeAccelerators, reapOrphans, spawnGuarded } from '../../src/core/native';
import { _resetNativeForTests } from '../../src/core/native/loader';
import { execFileSync } from 'child_process';
import { addonCandidates } from '../../src/core/native';
import { addonPath, memTotalFromProc, repoRoot, startFixture, tmpDir, waitDead } from './helpers';
import { skipBecause } from '../harness/skips';

// Everything must work without the addon: forced off, missing, or broken.

describe('without the native addon', function () {
  this.timeout(60000);
  let pidDir: string;
  before(() => (pidDir = tmpDir('pids')));
  afterEach(() => _resetNativeForTests());
  after(() => fs.rmSync(pidDir, { recursive: true, force: true }));

  it('STRATA_NATIVE=off: status says so, the probe answers from /proc and sysfs', async function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: /proc and sysfs');
    const st = loadNative(repoRoot, { STRATA_NATIVE: 'off' });
    assert.deepStrictEqual(st, { loaded: false, reason: 'disabled by STRATA_NATIVE=off' });
    assert.deepStrictEqual(nativeStatus(), st);
    const p = await probeAccelerators();
    assert.strictEqual(p.via, 'fallback');
    const cpu = p.devices.filter((d) => d.backend === 'cpu');
    assert.strictEqual(cpu.length, 1);
    const total = memTotalFromProc();
    assert.ok(Math.abs(cpu[0].totalBytes! - total) / total < 0.01);
    assert.strictEqual(p.devices.length, 1);
    for (const b of ['cuda', 'hip', 'vulkan'] as const) {
      const s = p.backends.find((x) => x.backend === b)!;
      assert.strictEqual(s.status, 'skipped');
      assert.match(s.detail!, /STRATA_NATIVE=off/);
    }
  });

  it('a missing addon is a reason, naming where it was looked for', () => {
    const st = loadNative('/nonexistent-root', {});
    assert.strictEqual(st.loaded, false);
    assert.match(st.reason!, /\/nonexistent-root\/native\/build\/Release\/strata_native\.node: not found/);
    assert.match(st.reason!, new RegExp(`dist/native/${process.platform}-${process.arch}/strata_native\\.node: not found`));
    // Decided once: another root does not change it until reset.
    assert.deepStrictEqual(loadNative(repoRoot, {}), st);
  });

  it('a broken addon file is a reason too, with the loader message', () => {
    const dir = tmpDir('broken');
    const file = path.join(dir, 'strata_native.node');
    fs.writeFileSync(file, 'not a shared library');
    const st = loadNative(repoRoot, { STRATA_NATIVE: file });
    assert.strictEqual(st.loaded, false);
    assert.ok(st.reason!.includes(file), st.reason);
    assert.match(st.reason!, /ELF|invalid|too short/i);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('spawnGuarded falls back to child_process with a pid file, and reports the exit', async function () {
    if (process.platform === 'win32') skipBecause(this, 'not on Windows: pid files and POSIX signals');
    loadNative(repoRoot, { STRATA_NATIVE: 'off' });
    const out = path.join(pidDir, 'out.log');
    const c = spawnGuarded('sh', ['-c', 'echo fallback; sleep 0.3; exit 5'], { pidFileDir: pidDir, stdout: { path: out } });
    assert.strictEqual(c.guard, 'pidfile');
    const pidFile = path.join(pidDir, `${c.pid}.json`);
    assert.ok(fs.existsSync(pidFile));
    assert.deepStrictEqual(await reapOrphans(pidDir), { killed: [], kept: 1, dropped: 0 }, 'an owner that lives keeps its children');
    assert.deepStrictEqual(await c.exited, { code: 5, signal: null });
    assert.ok(!fs.existsSync(pidFile), 'pid file removed at exit');
    assert.strictEqual(fs.readFileSync(out, 'utf8'), 'fallback\n');
  });

  it('pipes work the same without the addon', async function () {
    if (process.platform === 'win32') skipBecause(this, 'not on Windows: pid files and POSIX signals');
    loadNative(repoRoot, { STRATA_NATIVE: 'off' });
    const c = spawnGuarded('sh', ['-c', 'read x; echo "got $x"'], { stdin: 'pipe', stdout: 'pipe', pidFileDir: pidDir });
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    const ended = new Promise((r) => c.stdout!.on('end', r));
    c.stdin!.end('hi\n');
    await c.exited;
    await ended;
    assert.strictEqual(out, 'got hi\n');
    assert.strictEqual(c.stderr, null);
  });

  it('a SIGKILLed fallback owner leaves its child running; reapOrphans kills it at the next start', async function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: orphans are found through /proc');
    const f = startFixture('guardParent.ts', ['one', String(Date.now())], { ...process.env, STRATA_NATIVE: 'off', STRATA_TEST_PIDDIR: pidDir });
    const [{ pid, guard, native }] = await f.lines(1);
    assert.strictEqual(guard, 'pidfile');
    assert.strictEqual(native.loaded, false);
    f.child.kill('SIGKILL');
    await f.exited;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(isAlive(pid), 'the documented gap: nothing killed it yet');
    const r = await reapOrphans(pidDir);
    assert.deepStrictEqual(r.killed, [pid]);
    await waitDead(pid, 1000);
    assert.deepStrictEqual(
      fs.readdirSync(pidDir).filter((n) => n.endsWith('.json')),
      [],
    );
  });

  it('a fallback owner that exits normally takes its children along (exit hook)', async function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: orphans are found through /proc');
    const f = startFixture('guardParent.ts', ['unref'], { ...process.env, STRATA_NATIVE: 'off', STRATA_TEST_PIDDIR: pidDir });
    const [{ pid }] = await f.lines(1);
    assert.strictEqual(await f.exited, 0);
    await waitDead(pid, 1000);
  });

  it('reapOrphans never kills a process that merely reuses a recorded pid', async function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: process start times from /proc');
    // Owner: a pid that is certainly dead; child: this very process, recorded with a wrong start time.
    const rec = { pid: process.pid, exe: process.execPath, startTime: '1', daemonPid: 999999999, daemonStartTime: '1', startedAt: 0, group: false };
    fs.writeFileSync(path.join(pidDir, `${process.pid}.json`), JSON.stringify(rec));
    assert.deepStrictEqual(await reapOrphans(pidDir), { killed: [], kept: 0, dropped: 1 });
  });

  it('scripts/package-native.mjs puts the addon where the loader looks for a prebuilt one', async () => {
    const root = tmpDir('pkg');
    const out = path.join(root, 'dist', 'native');
    fs.mkdirSync(path.join(out, 'stale-target'), { recursive: true });
    execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'package-native.mjs'), '--from', addonPath(), '--out', out], { encoding: 'utf8' });
    assert.deepStrictEqual(fs.readdirSync(out), [`${process.platform}-${process.arch}`]);
    assert.ok(fs.existsSync(addonCandidates(root)[1]));
    assert.ok(fs.existsSync(path.join(path.dirname(addonCandidates(root)[1]), 'strata_probe')), 'the CLI travels with it');
    const st = loadNative(root, {});
    assert.strictEqual(st.loaded, true, st.reason);
    assert.strictEqual(st.path, addonCandidates(root)[1]);
    // An installer that drops the CLI's executable bit costs isolation, not the GPU answers.
    fs.chmodSync(path.join(path.dirname(addonCandidates(root)[1]), 'strata_probe'), 0o644);
    const p = await probeAccelerators({ backends: ['cpu'] });
    assert.deepStrictEqual([p.via, p.isolated, p.nativeError], ['native', false, undefined]);
    // A binary of the wrong format is refused.
    assert.throws(() =>
      execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'package-native.mjs'), '--target', 'win32-x64', '--from', addonPath(), '--out', out], {
        stdio: 'pipe',
      }),
    );
    fs.rmSync(root, { recursive: true, force: true });
  });
});
