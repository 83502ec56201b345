import * as assert from 'assert';
import { spawn as nodeSpawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { isAlive, spawnGuarded } from '../../src/core/native';
import { _resetNativeForTests } from '../../src/core/native/loader';
import { addonPath, startFixture, tmpDir, useAddon, waitDead } from './helpers';
import { skipBecause } from '../harness/skips';

// The child-lifetime guard with real processes: a separate node parent that loads the addon,
// real `sleep` children, real SIGKILLs.

/** Live (non-zombie) processes whose command line contains `token`. */
function processesWith(token: string): number[] {
  const found: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(token) && isAlive(Number(p))) found.push(Number(p));
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

const token = () => String(Math.floor(Math.random() * 1e9));

describe('guarded children', function () {
  this.timeout(60000);
  before(function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: guarded children use prctl(PR_SET_PDEATHSIG) and /proc');
    useAddon();
  });
  after(() => _resetNativeForTests());

  it('a child dies within 1 s after its parent is killed with SIGKILL', async () => {
    const t = token();
    const f = startFixture('guardParent.ts', ['one', t], { ...process.env, STRATA_NATIVE: addonPath() });
    const [{ pid, guard, native }] = await f.lines(1);
    assert.strictEqual(native.loaded, true, JSON.stringify(native));
    assert.strictEqual(guard, 'pdeathsig');
    assert.ok(isAlive(pid));
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(isAlive(pid), 'the child lives while its parent does');
    f.child.kill('SIGKILL');
    const ms = await waitDead(pid, 1000);
    console.log(`      child gone ${ms} ms after the parent's SIGKILL`);
    await f.exited;
  });

  it('no child survives a parent killed in the middle of a burst of spawns', async () => {
    const t = token();
    const f = startFixture('guardParent.ts', ['burst', t, '40'], { ...process.env, STRATA_NATIVE: addonPath() });
    const seen = await f.lines(5);
    f.child.kill('SIGKILL');
    await f.exited;
    for (const { pid } of seen) await waitDead(pid, 1000);
    // Children the parent forked but never reported (killed mid-spawn) must be gone too.
    const t0 = Date.now();
    while (processesWith(`600.${t}`).length && Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 10));
    assert.deepStrictEqual(processesWith(`600.${t}`), []);
  });

  it('reports exit codes and signals, reaping the child (no zombie left)', async () => {
    const a = spawnGuarded('sh', ['-c', 'exit 7']);
    assert.deepStrictEqual(await a.exited, { code: 7, signal: null });
    assert.deepStrictEqual(a.exitStatus(), { code: 7, signal: null });
    assert.ok(!fs.existsSync(`/proc/${a.pid}`), 'reaped');
    assert.strictEqual(a.kill(), false, 'no signal after exit');

    const b = spawnGuarded('sleep', ['30']);
    assert.strictEqual(b.kill('SIGTERM'), true);
    assert.deepStrictEqual(await b.exited, { code: null, signal: 'SIGTERM' });
  });

  it('neither steals nor loses exits of child_process children running at the same time', async () => {
    const node = nodeSpawn('sh', ['-c', 'sleep 0.2; exit 3']);
    const nodeExit = new Promise<number | null>((r) => node.on('exit', (c) => r(c)));
    const guarded = [0, 1, 2, 3].map((i) => spawnGuarded('sh', ['-c', `sleep 0.${i + 1}; exit ${10 + i}`]));
    const codes = await Promise.all(guarded.map((g) => g.exited.then((e) => e.code)));
    assert.deepStrictEqual(codes, [10, 11, 12, 13]);
    assert.strictEqual(await nodeExit, 3);
  });

  it('sends stdout and stderr to files or descriptors, and honours cwd and env', async () => {
    const dir = tmpDir('guard-io');
    const out = path.join(dir, 'out.log');
    fs.writeFileSync(out, 'earlier line\n');
    const errFd = fs.openSync(path.join(dir, 'err.log'), 'w');
    fs.writeFileSync(path.join(dir, 'in.txt'), 'from stdin\n');
    const c = spawnGuarded('sh', ['-c', 'pwd; echo "$STRATA_X"; echo oops >&2; cat'], {
      cwd: dir,
      env: { PATH: process.env.PATH, STRATA_X: 'from env' },
      stdout: { path: out },
      stderr: errFd,
      stdin: { path: path.join(dir, 'in.txt') },
    });
    fs.closeSync(errFd);
    assert.deepStrictEqual(await c.exited, { code: 0, signal: null });
    const text = fs.readFileSync(out, 'utf8');
    assert.strictEqual(text, `earlier line\n${fs.realpathSync(dir)}\nfrom env\nfrom stdin\n`); // appended, not truncated
    assert.strictEqual(fs.readFileSync(path.join(dir, 'err.log'), 'utf8'), 'oops\n');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("gives stdin, stdout and stderr as streams with 'pipe' (EOF, a megabyte, no leftovers)", async () => {
    const read = (s: NodeJS.ReadableStream) =>
      new Promise<string>((r) => {
        let t = '';
        s.on('data', (d) => (t += d));
        s.on('end', () => r(t));
      });
    const ioDirs = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('strata-io-'));
    const before = ioDirs();
    const c = spawnGuarded('sh', ['-c', 'read x; echo "got $x"; echo err >&2; head -c 1000000 /dev/zero | tr "\\0" x'], {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const [out, err] = [read(c.stdout!), read(c.stderr!)];
    c.stdin!.end('hello\n');
    assert.deepStrictEqual(await c.exited, { code: 0, signal: null });
    const text = await out;
    assert.ok(text.startsWith('got hello\n'), text.slice(0, 50));
    assert.strictEqual(text.length, 'got hello\n'.length + 1000000);
    assert.strictEqual(await err, 'err\n');
    c.stdin!.write('after exit\n'); // must not throw or crash
    c.stdin!.end();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepStrictEqual(ioDirs(), before, 'the socket folder is removed');
  });

  it('swapped descriptors land where they were asked to (stdout -> our stderr and back)', async () => {
    const dir = tmpDir('guard-swap');
    const a = fs.openSync(path.join(dir, 'a'), 'w');
    const b = fs.openSync(path.join(dir, 'b'), 'w');
    // The child gets a as its stderr and b as its stdout.
    const c = spawnGuarded('sh', ['-c', 'echo to-stdout; echo to-stderr >&2'], { stdout: b, stderr: a });
    await c.exited;
    fs.closeSync(a);
    fs.closeSync(b);
    assert.strictEqual(fs.readFileSync(path.join(dir, 'b'), 'utf8'), 'to-stdout\n');
    assert.strictEqual(fs.readFileSync(path.join(dir, 'a'), 'utf8'), 'to-stderr\n');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kill() reaches the whole process group', async () => {
    const t = token();
    const c = spawnGuarded('sh', ['-c', `sleep 600.${t} & wait`]);
    const t0 = Date.now();
    while (!processesWith(`600.${t}`).length && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    const [grandchild] = processesWith(`600.${t}`);
    assert.ok(grandchild);
    c.kill('SIGKILL');
    await c.exited;
    await waitDead(grandchild, 1000);
  });

  it('throws at once, with code and syscall, when the program or cwd does not exist', () => {
    assert.throws(
      () => spawnGuarded('strata-no-such-program', []),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    );
    assert.throws(
      () => spawnGuarded('/bin/sh', [], { cwd: '/nonexistent-dir' }),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'chdir',
    );
    const dir = tmpDir('guard-noexec');
    const f = path.join(dir, 'script');
    fs.writeFileSync(f, '#!/bin/sh\n', { mode: 0o644 });
    assert.throws(
      () => spawnGuarded(f, []),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    ); // not executable: no candidate
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to spawn from a worker thread (the death signal follows the forking thread)', async () => {
    const code = `
      const { parentPort, workerData } = require('worker_threads');
      const m = { exports: {} };
      process.dlopen(m, workerData);
      try { m.exports.spawnGuarded('/bin/true', [], {}, () => {}); parentPort.postMessage('spawned'); }
      catch (e) { parentPort.postMessage(e.code); }`;
    const w = new Worker(code, { eval: true, workerData: addonPath() });
    const msg = await new Promise((r) => w.once('message', r));
    await w.terminate();
    assert.strictEqual(msg, 'ERR_STRATA_NOT_MAIN_THREAD');
  });

  it('unref() lets the parent exit (and the child then dies with it); ref() keeps it waiting', async () => {
    const u = startFixture('guardParent.ts', ['unref'], { ...process.env, STRATA_NATIVE: addonPath() });
    const [{ pid }] = await u.lines(1);
    const t0 = Date.now();
    await u.exited;
    assert.ok(Date.now() - t0 < 3000);
    await waitDead(pid, 1000);

    const r = startFixture('guardParent.ts', ['ref'], { ...process.env, STRATA_NATIVE: addonPath() });
    const [, { exit }] = await r.lines(2);
    assert.deepStrictEqual(exit, { code: 0, signal: null });
    assert.strictEqual(await r.exited, 0);
  });
});
