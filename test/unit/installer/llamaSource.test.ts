import * as assert from 'assert';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { withLock } from '../../../src/daemon/installer/cacheLock';
import { toolMissingMessage } from '../../../src/daemon/installer/installError';
import { PINNED_NODE_LLAMA_CPP, ensureLlamaSource, llamaSourceLayout, readCachedLlamaSource, sriOf } from '../../../src/daemon/installer/llamaSource';
import { findOnPath } from '../../../src/daemon/installer/runProcess';
import { parseTar, tarEntryTarget } from '../../../src/daemon/installer/tarReader';
import { skipBecause } from '../../harness/skips';

const CHILD = path.join(__dirname, 'child.ts');

function tmpdir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `strata-${tag}-`));
}

/** A node-llama-cpp-shaped tarball holding a bundle of a one-commit repo; real git, real tar. */
function makeFakeTarball(root: string): { tgz: string; commit: string } {
  const repo = path.join(root, 'repo');
  fs.mkdirSync(repo);
  fs.writeFileSync(path.join(repo, 'CMakeLists.txt'), 'cmake_minimum_required(VERSION 3.14)\n');
  const git = (...args: string[]): string =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: repo, encoding: 'utf8' }).trim();
  git('init', '-q');
  git('add', '.');
  git('commit', '-qm', 'fake');
  const commit = git('rev-parse', 'HEAD');
  const llama = path.join(root, 'package', 'llama');
  fs.mkdirSync(llama, { recursive: true });
  git('bundle', 'create', '-q', path.join(llama, 'gitRelease.bundle'), 'HEAD');
  fs.writeFileSync(path.join(llama, 'llama.cpp.info.json'), JSON.stringify({ tag: 'v9.9.9' }));
  fs.writeFileSync(path.join(root, 'package', 'package.json'), '{}');
  const tgz = path.join(root, 'fake.tgz');
  execFileSync('tar', ['czf', tgz, 'package'], { cwd: root });
  return { tgz, commit };
}

describe('installer/llamaSource', function () {
  const hasGit = !!findOnPath('git');

  it('pins one node-llama-cpp version with its integrity and commit', () => {
    assert.match(PINNED_NODE_LLAMA_CPP.version, /^\d+\.\d+\.\d+$/);
    assert.match(PINNED_NODE_LLAMA_CPP.integrity, /^sha512-[A-Za-z0-9+/]+=*$/);
    assert.match(PINNED_NODE_LLAMA_CPP.llamaCommit, /^[0-9a-f]{40}$/);
  });

  it('lays the cache out under llama.cpp/', () => {
    const l = llamaSourceLayout('/c', '3.22.1');
    assert.strictEqual(l.tarball, path.join('/c', 'llama.cpp', 'npm', 'node-llama-cpp-3.22.1.tgz'));
    assert.strictEqual(l.stamp, path.join('/c', 'llama.cpp', 'npm', 'node-llama-cpp-3.22.1.json'));
  });

  it('says in one sentence what to install when a tool is missing', () => {
    assert.strictEqual(
      toolMissingMessage('cmake', 'linux'),
      'cmake was not found on PATH: install it (Debian/Ubuntu: sudo apt-get install cmake; Fedora: sudo dnf install cmake) and retry.',
    );
    assert.match(toolMissingMessage('c++', 'darwin'), /^A C\+\+ compiler .* was not found on PATH: install it \(xcode-select --install\) and retry\.$/);
    assert.match(toolMissingMessage('git', 'win32'), /winget install Git\.Git/);
  });

  it('finds executables only on the given PATH', function () {
    if (process.platform === 'win32') skipBecause(this, 'not on Windows: the fake executables are POSIX shell scripts');
    const dir = tmpdir('path');
    assert.strictEqual(findOnPath('cmake', { PATH: dir }), undefined);
    fs.writeFileSync(path.join(dir, 'tool'), '#!/bin/sh\n', { mode: 0o644 });
    assert.strictEqual(findOnPath('tool', { PATH: dir }), undefined, 'not executable');
    fs.chmodSync(path.join(dir, 'tool'), 0o755);
    assert.strictEqual(findOnPath('tool', { PATH: `/nonexistent${path.delimiter}${dir}` }), path.join(dir, 'tool'));
  });

  it('reads tarballs with ustar prefixes and refuses paths that escape', function () {
    if (!findOnPath('tar')) skipBecause(this, 'tar is not on PATH');
    const root = tmpdir('tar');
    const deep = path.join(root, 'package', 'llama', 'a'.repeat(60), 'b'.repeat(60));
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'long-name.txt'), 'deep');
    fs.writeFileSync(path.join(root, 'package', 'llama', 'x.json'), '{"tag":"t"}');
    fs.writeFileSync(path.join(root, 'package', 'other.txt'), 'no');
    execFileSync('tar', ['--format=ustar', '-cf', path.join(root, 'a.tar'), 'package'], { cwd: root });
    const entries = parseTar(fs.readFileSync(path.join(root, 'a.tar')));
    const files = entries.filter((e) => e.type === '0');
    const deepEntry = files.find((e) => e.name.endsWith('long-name.txt'));
    assert.ok(deepEntry, 'long path read');
    assert.strictEqual(deepEntry.name, `package/llama/${'a'.repeat(60)}/${'b'.repeat(60)}/long-name.txt`);
    assert.strictEqual(deepEntry.data.toString(), 'deep');
    assert.strictEqual(files.find((e) => e.name === 'package/llama/x.json')?.data.toString(), '{"tag":"t"}');

    const dest = path.join(root, 'out');
    assert.strictEqual(tarEntryTarget('package/llama/x.json', 'package/llama/', dest), path.join(dest, 'x.json'));
    assert.strictEqual(tarEntryTarget('package/other.txt', 'package/llama/', dest), undefined);
    assert.strictEqual(tarEntryTarget('package/llama/../../etc/passwd', 'package/llama/', dest), undefined);
    assert.strictEqual(tarEntryTarget('package/llama//etc/passwd', 'package/llama/', dest), undefined);
  });

  it('clones the bundle from a tarball into src-<commit>, then answers from the stamp', async function () {
    if (!hasGit || !findOnPath('tar')) skipBecause(this, 'needs git and tar on PATH');
    this.timeout(30_000);
    const root = tmpdir('src');
    const { tgz, commit } = makeFakeTarball(root);
    const cacheDir = path.join(root, 'cache');
    const opts = { cacheDir, nodeLlamaCppVersion: '0.0.0-test', tarballPath: tgz };
    // Two at once: one clones, the other waits on the lock and reuses the result.
    const [a, b] = await Promise.all([ensureLlamaSource(opts), ensureLlamaSource(opts)]);
    assert.deepStrictEqual(a, b);
    assert.strictEqual(a.commit, commit);
    assert.strictEqual(a.tag, 'v9.9.9');
    assert.strictEqual(a.srcDir, path.join(cacheDir, 'llama.cpp', `src-${commit.slice(0, 12)}`));
    assert.ok(fs.existsSync(path.join(a.srcDir, 'CMakeLists.txt')));
    const names = fs.readdirSync(path.join(cacheDir, 'llama.cpp'));
    assert.deepStrictEqual(
      names.filter((n) => n.startsWith('.tmp-')),
      [],
      'temp dirs cleaned',
    );
    assert.deepStrictEqual(readCachedLlamaSource({ cacheDir, nodeLlamaCppVersion: '0.0.0-test' }), a);

    // A source dir without its .git is not trusted.
    fs.rmSync(path.join(a.srcDir, '.git'), { recursive: true });
    assert.strictEqual(readCachedLlamaSource({ cacheDir, nodeLlamaCppVersion: '0.0.0-test' }), undefined);
    const again = await ensureLlamaSource(opts);
    assert.ok(fs.existsSync(path.join(again.srcDir, '.git')));
  });

  it('says so when git is missing', async function () {
    if (!findOnPath('tar') || process.platform === 'win32') skipBecause(this, 'needs tar on PATH and a POSIX PATH (not Windows)');
    const root = tmpdir('nogit');
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    await assert.rejects(
      ensureLlamaSource({ cacheDir: path.join(root, 'cache'), nodeLlamaCppVersion: '0.0.0-test', tarballPath: '/nonexistent.tgz', env: { PATH: empty } }),
      (e: Error) => e.message === 'git was not found on PATH: install it (Debian/Ubuntu: sudo apt-get install git) and retry.',
    );
  });

  it('rejects a tarball that does not match the pinned integrity', async function () {
    if (!hasGit || !findOnPath('tar')) skipBecause(this, 'needs git and tar on PATH');
    const root = tmpdir('sri');
    const { tgz } = makeFakeTarball(root);
    assert.notStrictEqual(sriOf(fs.readFileSync(tgz)), PINNED_NODE_LLAMA_CPP.integrity);
    await assert.rejects(ensureLlamaSource({ cacheDir: path.join(root, 'cache'), tarballPath: tgz }), (err: Error & { code?: string }) => {
      assert.strictEqual(err.code, 'SOURCE_FAILED');
      assert.match(err.message, /does not match the pinned integrity of node-llama-cpp 3\.22\.1/);
      return true;
    });
  });

  describe('withLock', () => {
    it('serialises holders in one process', async () => {
      const target = path.join(tmpdir('lock'), 'thing');
      const order: string[] = [];
      let waits = 0;
      const job = (name: string) =>
        withLock(target, { what: name, pollMs: 50, onWait: () => waits++ }, async () => {
          order.push(`${name}+`);
          await new Promise((r) => setTimeout(r, 150));
          order.push(`${name}-`);
        });
      await Promise.all([job('a'), job('b')]);
      // Either may win the race for the lock; what matters is that the holders never overlap.
      const first = order[0][0];
      const second = first === 'a' ? 'b' : 'a';
      assert.deepStrictEqual(order, [`${first}+`, `${first}-`, `${second}+`, `${second}-`]);
      assert.strictEqual(waits, 1);
      assert.ok(!fs.existsSync(`${target}.lock`), 'released');
    });

    it('waits for a holder in another process', async function () {
      this.timeout(20_000);
      const target = path.join(tmpdir('lockx'), 'thing');
      const child = spawn(process.execPath, ['-r', 'tsx/cjs', CHILD, 'lock', target, '1500', '10000'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise((r) => child.on('exit', r));
      await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve()));
      const t0 = Date.now();
      let waited = false;
      await withLock(target, { what: 'parent', pollMs: 50, onWait: () => (waited = true) }, async () => {
        assert.ok(waited);
        assert.ok(Date.now() - t0 >= 1000, 'acquired only after the child released');
      });
      await exited;
    });

    it('takes over the lock of a killed holder once it is stale', async function () {
      if (process.platform === 'win32') skipBecause(this, 'not on Windows: kills the lock holder with a POSIX signal');
      this.timeout(20_000);
      const target = path.join(tmpdir('lockk'), 'thing');
      const child = spawn(process.execPath, ['-r', 'tsx/cjs', CHILD, 'lock', target, '60000', '2000'], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve()));
      child.kill('SIGKILL');
      const t0 = Date.now();
      await withLock(target, { what: 'parent', staleMs: 2000, pollMs: 100 }, async () => undefined);
      const took = Date.now() - t0;
      assert.ok(took < 6000, `took ${took} ms`);
    });

    it('stops waiting when cancelled', async () => {
      const target = path.join(tmpdir('locka'), 'thing');
      const ac = new AbortController();
      await withLock(target, { what: 'holder' }, async () => {
        setTimeout(() => ac.abort(), 100);
        await assert.rejects(
          withLock(target, { what: 'Waiting', signal: ac.signal, pollMs: 20 }, async () => undefined),
          /cancelled/,
        );
      });
    });
  });
});
