import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  BENCH_FILE,
  benchmarkBackends,
  defaultBuildForModel,
  ensureBenchBinary,
  formatBenchTable,
  listInstalledBuilds,
  readBenchStore,
  writeBenchStore,
  modelKey,
} from '../../../src/daemon/installer/backends';
import { installLlamaRelease } from '../../../src/daemon/installer/downloadLlamaServer';
import { findLlamaServer, inspectLlamaServer } from '../../../src/daemon/installer/findLlamaServer';
import { findServerFor } from '../../../src/vscode/serverControl/binary';
import { ensureTinyModel } from '../../fixtures/models';
import { getLlamaBinaries, LlamaBinaries } from '../../harness/llamaBinaries';
import { startHttpServer, TestHttpServer, writeTarGz } from './archives';

// Finding llama-server (setting, managed installs, PATH, well-known places), what it reports
// (--version, --list-devices), and two builds side by side benchmarked with the real llama-bench
// on the tiny model: the results are kept and the faster becomes the model's default.

describe('installer: finding llama-server and benchmarking builds', function () {
  this.timeout(300_000);
  let tmp: string;
  let bins: LlamaBinaries;

  before(async () => {
    bins = await getLlamaBinaries();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-find-'));
  });
  after(() => {
    if (tmp && !process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const exe = (p: string, mode = 0o755) => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, '#!/bin/sh\nexit 0\n', { mode });
    fs.chmodSync(p, mode);
    return p;
  };

  it('looks in order: setting, managed installs, PATH, well-known places', () => {
    const home = path.join(tmp, 'home');
    const onPath = exe(path.join(tmp, 'pathdir', 'llama-server'));
    const wellKnown = exe(path.join(home, 'llama.cpp', 'build', 'bin', 'llama-server'));
    const managed = [{ id: 'build-x-cpu', serverPath: bins.serverPath, backend: 'cpu' }];
    const env = { PATH: path.dirname(onPath) };
    assert.deepStrictEqual(findLlamaServer({ settingPath: onPath, managed, env, homeDir: home }).found, { path: onPath, kind: 'setting' });
    assert.deepStrictEqual(findLlamaServer({ managed, env, homeDir: home }).found, {
      path: bins.serverPath,
      kind: 'managed',
      buildId: 'build-x-cpu',
      backend: 'cpu',
    });
    assert.strictEqual(findLlamaServer({ env, homeDir: home }).found?.kind, 'path');
    const wk = findLlamaServer({ env: { PATH: '' }, homeDir: home }).found;
    assert.strictEqual(wk?.path, wellKnown);
    assert.strictEqual(wk?.kind, 'well-known');
    // The folder instead of the binary is accepted.
    assert.strictEqual(findLlamaServer({ settingPath: path.dirname(onPath), env, homeDir: home }).found?.path, onPath);
  });

  it('a missing or non-executable binary gives one actionable message', () => {
    const home = path.join(tmp, 'home2');
    const noExec = exe(path.join(tmp, 'noexec', 'llama-server'), 0o644);
    const missing = findLlamaServer({ settingPath: path.join(tmp, 'nope', 'llama-server'), homeDir: home });
    assert.strictEqual(missing.problem?.code, 'setting-invalid');
    assert.match(missing.problem!.message, /^"strata\.server\.path" points to .*nope.*, which does not exist: fix the setting, or clear it/);
    const notExec = findLlamaServer({ settingPath: noExec, homeDir: home });
    assert.strictEqual(notExec.problem?.code, 'not-executable');
    assert.match(notExec.problem!.message, /chmod \+x/);
    const onPathNotExec = findLlamaServer({
      env: { PATH: path.dirname(noExec) },
      homeDir: home,
      managed: [{ id: 'gone', serverPath: path.join(tmp, 'gone') }],
    });
    // findOnPath skips non-executables, so nothing is found at all: the "build or download" message.
    assert.strictEqual(onPathNotExec.found, undefined);
    assert.match(onPathNotExec.problem!.message, /Build llama-server|Download llama-server/);
    assert.strictEqual(onPathNotExec.searched[0].problem, 'missing');
  });

  it('reports the version and devices llama-server prints', async () => {
    const info = await inspectLlamaServer(bins.serverPath);
    assert.strictEqual(info.error, undefined, info.error);
    assert.match(info.version ?? '', /^version: /);
    assert.ok(info.commit && bins.commit.startsWith(info.commit), `commit ${info.commit} vs ${bins.commit}`);
    assert.ok(info.backends.includes('CPU'));
    assert.ok(Array.isArray(info.devices));
    const bad = await inspectLlamaServer(exe(path.join(tmp, 'fake', 'llama-server')));
    assert.match(bad.error ?? '', /--version failed|for another system/);
  });

  describe('two builds side by side', () => {
    let http: TestHttpServer;
    let cacheDir: string;
    let stateDir: string;
    let model: string;

    before(async () => {
      model = await ensureTinyModel();
      cacheDir = path.join(tmp, 'cache');
      stateDir = path.join(tmp, 'state');
      // The cached CPU build, as Strata's build dir layout has it ...
      const buildDir = path.dirname(path.dirname(bins.serverPath));
      fs.mkdirSync(path.join(cacheDir, 'llama.cpp'), { recursive: true });
      fs.symlinkSync(buildDir, path.join(cacheDir, 'llama.cpp', path.basename(buildDir)));
      // ... and a "release" of the same binaries, installed through the download path.
      http = await startHttpServer();
      // On a cold cache llama-bench is not built yet (it is built on demand); the "release"
      // below must carry it, so build it into the cached build first.
      const local = listInstalledBuilds(cacheDir).find((b) => b.cmakeDir !== undefined);
      if (local) await ensureBenchBinary(local);
      const bench = path.join(bins.binDir, 'llama-bench');
      const archive = path.join(tmp, 'llama-bSIDE-bin-ubuntu-x64.tar.gz');
      writeTarGz(archive, [
        { name: 'llama-bSIDE/llama-server', from: bins.serverPath, mode: 0o755 },
        ...(fs.existsSync(bench) ? [{ name: 'llama-bSIDE/llama-bench', from: bench, mode: 0o755 }] : []),
      ]);
      const digest = crypto.createHash('sha256').update(fs.readFileSync(archive)).digest('hex');
      http.routes.set('/rel', {
        json: { tag_name: 'bSIDE', assets: [{ name: path.basename(archive), browser_download_url: `${http.url}/a`, digest: `sha256:${digest}` }] },
      });
      http.routes.set('/a', { file: archive });
      await installLlamaRelease({ releaseUrl: `${http.url}/rel`, cacheDir, platform: 'linux', arch: 'x64' });
    });
    after(async () => http?.close());

    it('lists both, benchmarks both with llama-bench, keeps the results and makes the faster the default', async () => {
      const builds = listInstalledBuilds(cacheDir);
      assert.deepStrictEqual(builds.map((b) => b.source).sort(), ['build', 'download']);
      const lines: string[] = [];
      const record = await benchmarkBackends({
        modelPath: model,
        builds,
        stateDir,
        bench: { nPrompt: 32, nGen: 8, repetitions: 1, args: ['-t', '2'] },
        onProgress: (m) => lines.push(m),
      });
      process.stderr.write(`      ${formatBenchTable(record).split('\n').join('\n      ')}\n`);
      for (const r of record.results) {
        assert.ok(r.figures, `${r.buildId}: ${r.error}`);
        assert.ok(r.figures.tg > 0 && r.figures.pp > 0);
        assert.strictEqual(r.figures.backends, 'CPU');
      }
      assert.ok(record.defaultBuildId);
      const stored = JSON.parse(fs.readFileSync(path.join(stateDir, BENCH_FILE), 'utf8'));
      assert.deepStrictEqual(stored.models[modelKey(model)].defaultBuildId, record.defaultBuildId);
      assert.strictEqual(defaultBuildForModel(model, stateDir), record.defaultBuildId);
      // The default is what the extension runs for this model (no strata.server.path set) ...
      const winner = builds.find((b) => b.id === record.defaultBuildId)!;
      assert.strictEqual(findServerFor({}, model, { cacheDir, stateDir }).found?.path, winner.serverPath);
      // ... and when the other one wins a later benchmark, it switches.
      const other = builds.find((b) => b.id !== record.defaultBuildId)!;
      const store = readBenchStore(stateDir);
      store.models[modelKey(model)].defaultBuildId = other.id;
      await writeBenchStore(store, stateDir);
      assert.strictEqual(findServerFor({}, model, { cacheDir, stateDir }).found?.path, other.serverPath);
      assert.ok(lines.some((l) => /Running llama-bench on/.test(l)));
    });
  });
});
