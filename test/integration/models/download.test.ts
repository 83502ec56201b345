import * as assert from 'assert';
import { execFileSync } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DownloadError, downloadFile } from '../../../src/core/models/download/downloadFile';
import { hubEndpoint, resolveUrl } from '../../../src/core/models/download/hub';
import { downloadModel, modelDestination } from '../../../src/core/models/download/downloadModel';
import { FakeHub, startFakeHub } from './fakeHub';
import { skipBecause } from '../../harness/skips';

// Downloads against a local server that speaks the hub's resolve protocol (fakeHub.ts), with the
// faults a user meets: a cut connection (resume with Range), a wrong hash (refused and
// quarantined), a full disk (a 4 MiB tmpfs: refused up front, and ENOSPC mid-file), cancel,
// split models, gated and missing files.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

describe('model downloads (local hub emulation)', function () {
  this.timeout(60_000);
  let hub: FakeHub;
  let dir: string;
  before(async () => {
    hub = await startFakeHub();
  });
  after(async () => {
    await hub.close();
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-dl-'));
    hub.requests.length = 0;
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const url = (repo: string, file: string) => resolveUrl(hub.endpoint, repo, file);

  it('downloads, verifies the hub hash and only then gives the file its name', async () => {
    const content = randomBytes(3 * MiB);
    hub.add({ repo: 'org/model-GGUF', path: 'model-Q4_K_M.gguf', content });
    const seen: string[] = [];
    const r = await downloadFile({
      url: url('org/model-GGUF', 'model-Q4_K_M.gguf'),
      dest: path.join(dir, 'model-Q4_K_M.gguf'),
      onProgress: (p) => seen.push(p.phase),
    });
    assert.strictEqual(r.verification, 'matched');
    assert.strictEqual(r.sha256, sha(content));
    assert.ok(fs.readFileSync(r.path).equals(content));
    assert.deepStrictEqual(fs.readdirSync(dir), ['model-Q4_K_M.gguf']);
    assert.ok(seen.includes('verifying'));
    assert.ok(hub.requests.some((q) => q.method === 'HEAD' && q.url.includes('/resolve/main/')));
  });

  it('resumes an interrupted download with an HTTP Range request', async () => {
    const content = randomBytes(4 * MiB);
    hub.add({ repo: 'org/big', path: 'big.gguf', content, cutAfter: 1_500_000, cutTimes: 1 });
    const dest = path.join(dir, 'big.gguf');
    await assert.rejects(downloadFile({ url: url('org/big', 'big.gguf'), dest }), (e: DownloadError) => e.code === 'network' && /resume/.test(e.message));
    assert.ok(!fs.existsSync(dest), 'no finished-looking file after the cut');
    const partial = fs.statSync(`${dest}.part`).size;
    assert.ok(partial > 0 && partial <= 1_500_000, `kept ${partial} bytes`);
    const r = await downloadFile({ url: url('org/big', 'big.gguf'), dest });
    assert.strictEqual(r.resumedFrom, partial);
    assert.ok(
      hub.requests.some((q) => q.range === `bytes=${partial}-`),
      'asked for the rest only',
    );
    assert.strictEqual(r.sha256, sha(content));
    assert.ok(fs.readFileSync(dest).equals(content));
    assert.ok(!fs.existsSync(`${dest}.part`) && !fs.existsSync(`${dest}.part.json`));
  });

  it('starts over when the server ignores the Range', async () => {
    const content = randomBytes(2 * MiB);
    hub.add({ repo: 'org/norange', path: 'f.gguf', content, cutAfter: 700_000, cutTimes: 1, ignoreRange: true });
    const dest = path.join(dir, 'f.gguf');
    await assert.rejects(downloadFile({ url: url('org/norange', 'f.gguf'), dest }));
    const r = await downloadFile({ url: url('org/norange', 'f.gguf'), dest });
    assert.strictEqual(r.resumedFrom, 0);
    assert.ok(fs.readFileSync(dest).equals(content));
  });

  it('refuses a wrong checksum and quarantines the bytes', async () => {
    const content = randomBytes(1 * MiB);
    hub.add({ repo: 'org/evil', path: 'evil.gguf', content, advertisedSha256: 'ab'.repeat(32) });
    const dest = path.join(dir, 'evil.gguf');
    let err: DownloadError | undefined;
    await downloadFile({ url: url('org/evil', 'evil.gguf'), dest }).catch((e: DownloadError) => {
      err = e;
    });
    assert.strictEqual(err?.code, 'checksum');
    assert.match(err!.message, /evil\.gguf failed its checksum .* not used and was moved to/);
    assert.ok(!fs.existsSync(dest) && !fs.existsSync(`${dest}.part`));
    assert.ok(err!.quarantinedAt && fs.existsSync(err!.quarantinedAt));
    assert.strictEqual(path.basename(path.dirname(err!.quarantinedAt)), '.quarantine');
  });

  it('checks a pinned hash even when the mirror sends none, and records one otherwise', async () => {
    const content = randomBytes(512 * 1024);
    hub.add({ repo: 'org/mirror', path: 'm.gguf', content, noHash: true });
    const r1 = await downloadFile({ url: url('org/mirror', 'm.gguf'), dest: path.join(dir, 'a.gguf') });
    assert.strictEqual(r1.verification, 'recorded');
    const r2 = await downloadFile({ url: url('org/mirror', 'm.gguf'), dest: path.join(dir, 'b.gguf'), sha256: sha(content) });
    assert.strictEqual(r2.verification, 'matched');
    await assert.rejects(
      downloadFile({ url: url('org/mirror', 'm.gguf'), dest: path.join(dir, 'c.gguf'), sha256: '0'.repeat(64) }),
      (e: DownloadError) => e.code === 'checksum',
    );
  });

  it('cancels cleanly and resumes later', async () => {
    const content = randomBytes(2 * MiB);
    hub.add({ repo: 'org/slow', path: 's.gguf', content, throttle: 64 * 1024 });
    const dest = path.join(dir, 's.gguf');
    const ac = new AbortController();
    const p = downloadFile({
      url: url('org/slow', 's.gguf'),
      dest,
      signal: ac.signal,
      onProgress: (x) => {
        if (x.bytes > 300_000) ac.abort();
      },
    });
    await assert.rejects(p, (e: DownloadError) => e.code === 'cancelled');
    assert.ok(!fs.existsSync(dest));
    hub.add({ repo: 'org/slow', path: 's.gguf', content });
    const r = await downloadFile({ url: url('org/slow', 's.gguf'), dest });
    assert.ok(r.resumedFrom > 0);
    assert.strictEqual(r.sha256, sha(content));
  });

  it('names missing and gated files plainly', async () => {
    hub.add({ repo: 'org/gated', path: 'g.gguf', content: Buffer.alloc(10), status: 401 });
    await assert.rejects(
      downloadFile({ url: url('org/none', 'x.gguf'), dest: path.join(dir, 'x.gguf') }),
      (e: DownloadError) => e.code === 'not-found' && /x\.gguf is not on the server/.test(e.message),
    );
    await assert.rejects(
      downloadFile({ url: url('org/gated', 'g.gguf'), dest: path.join(dir, 'g.gguf') }),
      (e: DownloadError) => e.code === 'unauthorized' && /HF_TOKEN/.test(e.message),
    );
  });

  it('downloads every part of a split model, remembers the hashes, and skips verified parts', async () => {
    const parts = [randomBytes(MiB), randomBytes(MiB + 123)];
    const files = ['Big-Q8_0/Big-Q8_0-00001-of-00002.gguf', 'Big-Q8_0/Big-Q8_0-00002-of-00002.gguf'];
    files.forEach((f, i) => hub.add({ repo: 'org/Big-GGUF', path: f, content: parts[i] }));
    const progress: number[] = [];
    const r = await downloadModel({
      endpoint: hub.endpoint,
      repo: 'org/Big-GGUF',
      files,
      downloadDir: dir,
      onProgress: (p) => progress.push(p.bytes / p.total),
    });
    assert.strictEqual(r.path, modelDestination(dir, 'org/Big-GGUF', files[0]));
    assert.deepStrictEqual(
      r.parts.map((p) => p.sha256),
      parts.map(sha),
    );
    assert.ok(progress[progress.length - 1] === 1 && progress.every((x, i) => i === 0 || x >= progress[i - 1] - 1e-9));
    const store = JSON.parse(fs.readFileSync(path.join(dir, '.strata-sha256.json'), 'utf8'));
    assert.strictEqual(store[`org/Big-GGUF/${files[1]}`], sha(parts[1]));
    const before = hub.requests.filter((q) => q.method === 'GET').length;
    await downloadModel({ endpoint: hub.endpoint, repo: 'org/Big-GGUF', files, downloadDir: dir });
    assert.strictEqual(hub.requests.filter((q) => q.method === 'GET').length, before, 'nothing fetched again');
  });

  it('takes the endpoint from the setting, then HF_ENDPOINT', () => {
    assert.strictEqual(hubEndpoint('https://hf-mirror.com/', {}), 'https://hf-mirror.com');
    assert.strictEqual(hubEndpoint('', { HF_ENDPOINT: 'http://proxy:8080' }), 'http://proxy:8080');
    assert.strictEqual(hubEndpoint(undefined, {}), 'https://huggingface.co');
    assert.throws(() => hubEndpoint('ftp://x', {}), /not an http\(s\) URL/);
    assert.strictEqual(resolveUrl('https://h', 'a/b c', 'dir/f.gguf'), 'https://h/a/b%20c/resolve/main/dir/f.gguf');
  });

  describe('on a full disk (4 MiB tmpfs)', () => {
    let mnt: string | undefined;
    before(function () {
      if (process.platform !== 'linux') skipBecause(this, 'needs Linux: mounts a tmpfs');
      const m = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-tmpfs-'));
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', m], { stdio: 'ignore' });
        mnt = m;
      } catch {
        // Mounting needs root (CAP_SYS_ADMIN); without it the disk checks are covered by the
        // freeBytes probe in the tests above and the ENOSPC path cannot be produced for real.
        fs.rmSync(m, { recursive: true, force: true });
        skipBecause(this, 'cannot mount a tmpfs: needs root (CAP_SYS_ADMIN); the ENOSPC path cannot be produced for real without it');
      }
    });
    after(() => {
      if (!mnt) return;
      try {
        execFileSync('umount', [mnt], { stdio: 'ignore' });
      } catch {
        /* busy: leave it */
      }
      fs.rmSync(mnt, { recursive: true, force: true });
    });

    it('refuses up front with the sizes in the message, writing nothing', async () => {
      hub.add({ repo: 'org/huge', path: 'h.gguf', content: randomBytes(6 * MiB) });
      const dest = path.join(mnt!, 'h.gguf');
      await assert.rejects(
        downloadFile({ url: url('org/huge', 'h.gguf'), dest, reserveBytes: 0 }),
        (e: DownloadError) => e.code === 'disk-full' && /Not enough disk space for h\.gguf: it needs 6\.3 GB|it needs 6 MB|it needs \d+ MB/.test(e.message),
      );
      assert.deepStrictEqual(
        fs.readdirSync(mnt!).filter((f) => f.startsWith('h.gguf') && !f.endsWith('.json')),
        [],
      );
    });

    it('stops with a clear error when the disk fills mid-file, leaving no finished-looking file', async () => {
      hub.add({ repo: 'org/huge2', path: 'h2.gguf', content: randomBytes(6 * MiB) });
      const dest = path.join(mnt!, 'h2.gguf');
      // Another program takes the space after the check: pretend the disk was empty then.
      const err = await downloadFile({ url: url('org/huge2', 'h2.gguf'), dest, freeBytes: async () => 1e12 }).catch((e: DownloadError) => e);
      assert.ok(err instanceof DownloadError && err.code === 'disk-full', String(err));
      assert.match(err.message, /disk filled up while downloading h2\.gguf; free some space/);
      assert.ok(!fs.existsSync(dest), 'no file under the final name');
      fs.rmSync(`${dest}.part`, { force: true });
    });
  });
});
