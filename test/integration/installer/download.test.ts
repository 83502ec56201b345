import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { listInstalledBuilds } from '../../../src/daemon/installer/backends';
import * as net from 'net';
import { downloadsRoot, installLlamaRelease } from '../../../src/daemon/installer/downloadLlamaServer';
import { LlamaDownloadError } from '../../../src/daemon/installer/llamaDownloadError';
import { fetchRelease } from '../../../src/daemon/installer/llamaRelease';
import { getLlamaBinaries } from '../../harness/llamaBinaries';
import { listTree, startHttpServer, TestHttpServer, writeTarGz, writeZip, ArchiveFile } from './archives';

// "Download llama-server" against a local HTTP server that plays GitHub's release API and
// download host, serving archives made from the locally built llama-server (the real binary, so
// the install's --version check runs it). A wrong checksum, a cut connection, a truncated
// archive, a binary that does not run and a cancel must all leave nothing installed.

const sha256 = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('installer: release download with SHA-256 verification', function () {
  this.timeout(120_000);
  let tmp: string;
  let cacheDir: string;
  let http: TestHttpServer;
  let files: ArchiveFile[];
  let tarGz: string;
  let zip: string;

  const release = (tag: string, assets: { name: string; file?: string; digest?: string | null; size?: number }[]) => ({
    tag_name: tag,
    assets: assets.map((a) => ({
      name: a.name,
      browser_download_url: `${http.url}/download/${tag}/${a.name}`,
      size: a.size ?? (a.file ? fs.statSync(a.file).size : 0),
      ...(a.digest === null ? {} : { digest: `sha256:${a.digest ?? sha256(a.file!)}` }),
    })),
  });

  const serve = (tag: string, name: string, route: Parameters<TestHttpServer['routes']['set']>[1]) => http.routes.set(`/download/${tag}/${name}`, route);

  /** Nothing but finished installs (and nothing at all unless `ids`) under the downloads root. */
  const assertNothingHalfInstalled = (ids: string[] = []) => {
    const left = listTree(downloadsRoot(cacheDir)).filter((p) => !p.includes('/'));
    assert.deepStrictEqual(left, ids, `downloads dir holds ${left.join(', ')}`);
  };

  before(async () => {
    const bins = await getLlamaBinaries();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-download-'));
    cacheDir = path.join(tmp, 'cache');
    http = await startHttpServer();
    const bench = path.join(bins.binDir, 'llama-bench');
    files = [
      { name: 'llama-bTEST/llama-server', from: bins.serverPath, mode: 0o755 },
      ...(fs.existsSync(bench) ? [{ name: 'llama-bTEST/llama-bench', from: bench, mode: 0o755 }] : []),
      { name: 'llama-bTEST/libggml-fake.so.1', data: Buffer.from('not really a library'), mode: 0o644 },
      { name: 'llama-bTEST/libggml-fake.so', symlink: 'libggml-fake.so.1' },
      { name: 'llama-bTEST/LICENSE', data: Buffer.from('MIT\n') },
    ];
    tarGz = path.join(tmp, 'llama-bTEST-bin-ubuntu-x64.tar.gz');
    writeTarGz(tarGz, files);
    zip = path.join(tmp, 'llama-bZIP-bin-ubuntu-vulkan-x64.zip');
    writeZip(
      zip,
      files.map((f) => ({ ...f, name: f.name.replace('llama-bTEST/', 'build/bin/') })),
    );
  });

  after(async () => {
    await http?.close();
    if (tmp && !process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(tmp, { recursive: true, force: true });
  });

  afterEach(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

  it('installs a verified .tar.gz: the binary runs, links and modes survive, a second call downloads nothing', async () => {
    http.routes.set('/releases/latest', { json: release('bTEST', [{ name: path.basename(tarGz), file: tarGz }]) });
    serve('bTEST', path.basename(tarGz), { file: tarGz });
    const phases: string[] = [];
    const r = await installLlamaRelease({
      releaseUrl: `${http.url}/releases/latest`,
      cacheDir,
      platform: 'linux',
      arch: 'x64',
      onProgress: (p) => phases.push(p.phase),
    });
    assert.strictEqual(r.installed, true);
    assert.strictEqual(r.id, 'bTEST-ubuntu-x64');
    assert.strictEqual(r.manifest.backend, 'cpu');
    assert.strictEqual(r.manifest.sha256, sha256(tarGz));
    assert.match(r.manifest.version, /version: .*commit/);
    const out = execFileSync(r.serverPath, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    void out;
    assert.ok(fs.statSync(r.serverPath).mode & 0o100, 'llama-server lost its exec bit');
    assert.strictEqual(fs.readlinkSync(path.join(r.dir, 'llama-bTEST', 'libggml-fake.so')), 'libggml-fake.so.1');
    for (const p of ['metadata', 'download', 'verify', 'unpack', 'check', 'done']) assert.ok(phases.includes(p), `no ${p} progress`);
    assertNothingHalfInstalled(['bTEST-ubuntu-x64']);
    const listed = listInstalledBuilds(cacheDir).find((b) => b.id === r.id);
    assert.ok(listed, 'the download is not listed as an installed build');
    assert.strictEqual(listed.source, 'download');
    assert.strictEqual(
      !!listed.benchPath,
      files.some((f) => f.name.endsWith('llama-bench')),
    );

    const hits = http.hits.length;
    const again = await installLlamaRelease({ releaseUrl: `${http.url}/releases/latest`, cacheDir, platform: 'linux', arch: 'x64' });
    assert.strictEqual(again.installed, false);
    assert.deepStrictEqual(http.hits.slice(hits), ['/releases/latest'], 'the archive was downloaded again');
  });

  it('installs a verified .zip with the binaries under build/bin', async () => {
    http.routes.set('/releases/zip', { json: release('bZIP', [{ name: path.basename(zip), file: zip }]) });
    serve('bZIP', path.basename(zip), { file: zip });
    const r = await installLlamaRelease({ releaseUrl: `${http.url}/releases/zip`, cacheDir, platform: 'linux', arch: 'x64' });
    assert.strictEqual(r.id, 'bZIP-ubuntu-vulkan-x64');
    assert.strictEqual(r.manifest.backend, 'vulkan');
    assert.strictEqual(r.manifest.serverRel, path.join('build', 'bin', 'llama-server'));
    assert.strictEqual(fs.readFileSync(path.join(r.dir, 'build', 'bin', 'LICENSE'), 'utf8'), 'MIT\n');
    assert.strictEqual(fs.readlinkSync(path.join(r.dir, 'build', 'bin', 'libggml-fake.so')), 'libggml-fake.so.1');
    execFileSync(r.serverPath, ['--version'], { stdio: 'ignore' });
  });

  it('refuses an archive whose SHA-256 does not match, and leaves nothing', async () => {
    http.routes.set('/releases/bad-sum', { json: release('bTEST', [{ name: path.basename(tarGz), file: tarGz, digest: 'ab'.repeat(32) }]) });
    serve('bTEST', path.basename(tarGz), { file: tarGz });
    await assert.rejects(
      installLlamaRelease({ releaseUrl: `${http.url}/releases/bad-sum`, cacheDir, platform: 'linux', arch: 'x64' }),
      (e: Error) => e instanceof LlamaDownloadError && e.code === 'CHECKSUM' && /does not match its published SHA-256.*nothing was installed/.test(e.message),
    );
    assertNothingHalfInstalled();
  });

  it('refuses a download cut off mid-way (the server promised more bytes), and leaves nothing', async () => {
    http.routes.set('/releases/cut', { json: release('bTEST', [{ name: path.basename(tarGz), file: tarGz }]) });
    serve('bTEST', path.basename(tarGz), { file: tarGz, cutAfter: Math.floor(fs.statSync(tarGz).size / 2) });
    await assert.rejects(
      installLlamaRelease({ releaseUrl: `${http.url}/releases/cut`, cacheDir, platform: 'linux', arch: 'x64' }),
      (e: Error) => e instanceof LlamaDownloadError && (e.code === 'TRUNCATED' || e.code === 'CHECKSUM'),
    );
    assertNothingHalfInstalled();
  });

  it('refuses a truncated archive even when its checksum matches (a bad upload), and leaves nothing', async () => {
    for (const [src, name] of [
      [tarGz, 'llama-bCUT-bin-ubuntu-x64.tar.gz'],
      [zip, 'llama-bCUT-bin-ubuntu-vulkan-x64.zip'],
    ] as const) {
      const cut = path.join(tmp, name);
      fs.writeFileSync(cut, fs.readFileSync(src).subarray(0, Math.floor(fs.statSync(src).size * 0.6)));
      http.routes.set('/releases/cut-archive', { json: release('bCUT', [{ name, file: cut }]) });
      serve('bCUT', name, { file: cut });
      await assert.rejects(
        installLlamaRelease({ releaseUrl: `${http.url}/releases/cut-archive`, cacheDir, platform: 'linux', arch: 'x64' }),
        (e: Error) => e instanceof LlamaDownloadError && e.code === 'UNPACK' && /truncated|corrupt/.test(e.message),
        name,
      );
      assertNothingHalfInstalled();
    }
  });

  it('refuses an asset without a published SHA-256 before downloading it, unless one is given', async () => {
    http.routes.set('/releases/nosum', { json: release('bTEST', [{ name: path.basename(tarGz), file: tarGz, digest: null }]) });
    serve('bTEST', path.basename(tarGz), { file: tarGz });
    const hits = http.hits.length;
    await assert.rejects(
      installLlamaRelease({ releaseUrl: `${http.url}/releases/nosum`, cacheDir, platform: 'linux', arch: 'x64' }),
      (e: Error) => e instanceof LlamaDownloadError && e.code === 'NO_CHECKSUM',
    );
    assert.deepStrictEqual(http.hits.slice(hits), ['/releases/nosum']);
    const r = await installLlamaRelease({ releaseUrl: `${http.url}/releases/nosum`, cacheDir, platform: 'linux', arch: 'x64', sha256: sha256(tarGz) });
    assert.strictEqual(r.installed, true);
  });

  it('refuses a llama-server that does not run here, and one that is not in the archive', async () => {
    const broken = path.join(tmp, 'llama-bBRK-bin-ubuntu-x64.tar.gz');
    writeTarGz(broken, [
      { name: 'x/llama-server', data: Buffer.from('#!/bin/sh\necho "error while loading shared libraries: libcuda.so.1" >&2\nexit 127\n'), mode: 0o755 },
    ]);
    const empty = path.join(tmp, 'llama-bEMP-bin-ubuntu-x64.tar.gz');
    writeTarGz(empty, [{ name: 'x/README', data: Buffer.from('hi') }]);
    http.routes.set('/releases/brk', { json: release('bBRK', [{ name: path.basename(broken), file: broken }]) });
    serve('bBRK', path.basename(broken), { file: broken });
    await assert.rejects(
      installLlamaRelease({ releaseUrl: `${http.url}/releases/brk`, cacheDir, platform: 'linux', arch: 'x64' }),
      (e: Error) => e instanceof LlamaDownloadError && e.code === 'VERIFY' && /does not run on this machine.*libcuda/.test(e.message),
    );
    http.routes.set('/releases/emp', { json: release('bEMP', [{ name: path.basename(empty), file: empty }]) });
    serve('bEMP', path.basename(empty), { file: empty });
    await assert.rejects(
      installLlamaRelease({ releaseUrl: `${http.url}/releases/emp`, cacheDir, platform: 'linux', arch: 'x64' }),
      (e: Error) => e instanceof LlamaDownloadError && e.code === 'NO_BINARY',
    );
    assertNothingHalfInstalled();
  });

  it('a cancel mid-download leaves nothing; no archive for the platform is one clear message', async () => {
    http.routes.set('/releases/latest', { json: release('bTEST', [{ name: path.basename(tarGz), file: tarGz }]) });
    serve('bTEST', path.basename(tarGz), { file: tarGz });
    const abort = new AbortController();
    await assert.rejects(
      installLlamaRelease({
        releaseUrl: `${http.url}/releases/latest`,
        cacheDir,
        platform: 'linux',
        arch: 'x64',
        signal: abort.signal,
        onProgress: (p) => {
          if (p.phase === 'download' && (p.percent ?? 0) > 0) abort.abort();
        },
      }),
      (e: Error) => e instanceof LlamaDownloadError && e.code === 'ABORTED',
    );
    assertNothingHalfInstalled();
    await assert.rejects(
      installLlamaRelease({ releaseUrl: `${http.url}/releases/latest`, cacheDir, platform: 'darwin', arch: 'arm64' }),
      (e: Error) => e instanceof LlamaDownloadError && e.code === 'NO_ASSET' && /no archive for macos-arm64.*build llama-server instead/.test(e.message),
    );
  });

  it('a release server that cannot be reached (offline) is UNREACHABLE with the cause, so the UI offers a build instead', async () => {
    // A port nobody listens on: the connection is refused, as for a machine without a network.
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    await assert.rejects(
      fetchRelease(`http://127.0.0.1:${port}/repos/ggml-org/llama.cpp/releases/latest`),
      (e: Error) =>
        e instanceof LlamaDownloadError &&
        e.code === 'UNREACHABLE' &&
        /^Cannot reach http:\/\/127\.0\.0\.1:\d+\/\S+ \(ECONNREFUSED\): check the network, or build llama-server instead/.test(e.message),
    );
  });
});
