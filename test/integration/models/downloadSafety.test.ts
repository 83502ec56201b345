import * as assert from 'assert';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DownloadError, downloadFile } from '../../../src/core/models/download/downloadFile';
import { downloadModel, modelDestination } from '../../../src/core/models/download/downloadModel';
import { resolveUrl } from '../../../src/core/models/download/hub';
import { listTree } from '../installer/archives';
import { FakeHub, startFakeHub } from './fakeHub';

// The model downloader against a local hub (fakeHub.ts) playing an attacker or a changing file:
// names from settings that climb out of the download folder, a subfolder that is a link to
// elsewhere, a redirect that would carry HF_TOKEN to another origin, and a file replaced between
// a cut transfer and its resume (which must never splice two versions).

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

describe('model downloads stay in their folder and their origin', function () {
  this.timeout(60_000);
  let hub: FakeHub;
  let scratch: string;
  let downloads: string;
  before(async () => {
    hub = await startFakeHub();
  });
  after(async () => {
    await hub.close();
  });
  beforeEach(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-dlsafe-'));
    downloads = path.join(scratch, 'models');
    fs.mkdirSync(downloads);
    hub.requests.length = 0;
  });
  afterEach(() => {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  const outsideDownloads = () => listTree(scratch).filter((p) => p !== 'models' && !p.startsWith('models/'));

  it('refuses a custom model whose file name climbs out of the download folder, writing nothing', async () => {
    // The hub serves whatever the normalised URL asks for, so only the downloader's own check stands between the name and the disk.
    const evil = '../../../escape.gguf';
    const content = Buffer.from('export EVIL=1\n');
    hub.addAt(new URL(resolveUrl(hub.endpoint, 'org/m', evil)).pathname, { repo: 'org/m', path: evil, content });
    await assert.rejects(
      downloadModel({ endpoint: hub.endpoint, repo: 'org/m', files: [evil], downloadDir: downloads }),
      (e: DownloadError) => e.code === 'unsafe-name' && /will not download .*escape\.gguf.*strata\.models\.custom/.test(e.message),
    );
    assert.deepStrictEqual(outsideDownloads(), []);
    assert.deepStrictEqual(listTree(downloads), []);
    assert.deepStrictEqual(hub.requests, [], 'asked the hub for it anyway');
  });

  it('refuses odd repository and file names before any request', async () => {
    const bad: Array<[string, string]> = [
      ['org/m', '/etc/passwd'],
      ['org/m', 'a/../../x.gguf'],
      ['org/m', '..'],
      ['org/m', '.bashrc'],
      ['org/m', 'a\\..\\x.gguf'],
      ['org/m', 'a\u0000.gguf'],
      ['org/m', 'a\n.gguf'],
      ['org/m', 'C:x.gguf'],
      ['org/m', 'a//b.gguf'],
      ['org/m', ''],
      ['../..', 'x.gguf'],
      ['org', 'x.gguf'],
      ['org/m/extra', 'x.gguf'],
      ['/abs/m', 'x.gguf'],
      ['org/..', 'x.gguf'],
      ['org/m\\..', 'x.gguf'],
    ];
    for (const [repo, file] of bad) {
      assert.throws(
        () => modelDestination(downloads, repo, file),
        (e: DownloadError) => e.code === 'unsafe-name',
        `${repo} ${JSON.stringify(file)}`,
      );
    }
    assert.strictEqual(
      modelDestination(downloads, 'bartowski/Qwen2.5-Coder-7B-Instruct-GGUF', 'Q8_0/Qwen2.5-Coder-7B-Instruct-Q8_0-00001-of-00002.gguf'),
      path.join(downloads, 'bartowski', 'Qwen2.5-Coder-7B-Instruct-GGUF', 'Q8_0', 'Qwen2.5-Coder-7B-Instruct-Q8_0-00001-of-00002.gguf'),
    );
  });

  it('refuses a download folder whose subfolder is a link leading outside it', async () => {
    const elsewhere = path.join(scratch, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(downloads, 'org'));
    hub.add({ repo: 'org/m', path: 'm.gguf', content: randomBytes(1024) });
    await assert.rejects(
      downloadModel({ endpoint: hub.endpoint, repo: 'org/m', files: ['m.gguf'], downloadDir: downloads }),
      (e: DownloadError) => e.code === 'unsafe-name' && /leads outside .* through a link/.test(e.message),
    );
    assert.deepStrictEqual(fs.readdirSync(elsewhere), []);
  });

  it('sends HF_TOKEN to the hub but not through a redirect to another origin', async () => {
    const cdn = await startFakeHub({ host: '127.0.0.2' });
    const hub2 = await startFakeHub({ cdn: () => cdn.endpoint });
    try {
      const content = randomBytes(256 * 1024);
      for (const h of [hub2, cdn]) h.add({ repo: 'org/gated', path: 'g.gguf', content });
      const r = await downloadModel({ endpoint: hub2.endpoint, repo: 'org/gated', files: ['g.gguf'], downloadDir: downloads, token: 'hf_secret' });
      assert.ok(fs.readFileSync(r.path).equals(content));
      assert.ok(hub2.requests.length > 0 && hub2.requests.every((q) => q.authorization === 'Bearer hf_secret'), 'the hub itself gets the token');
      assert.ok(
        cdn.requests.some((q) => q.method === 'GET'),
        'the bytes came from the other origin',
      );
      assert.deepStrictEqual(cdn.requests.map((q) => q.authorization).filter(Boolean), [], 'the token followed the redirect to another origin');
      // Another port on the same address is another origin too.
      const otherPort = await startFakeHub();
      const hub3 = await startFakeHub({ cdn: () => otherPort.endpoint });
      try {
        for (const h of [hub3, otherPort]) h.add({ repo: 'org/gated', path: 'g2.gguf', content });
        await downloadFile({ url: resolveUrl(hub3.endpoint, 'org/gated', 'g2.gguf'), dest: path.join(downloads, 'g2.gguf'), token: 'hf_secret' });
        assert.deepStrictEqual(otherPort.requests.map((q) => q.authorization).filter(Boolean), []);
      } finally {
        await hub3.close();
        await otherPort.close();
      }
    } finally {
      await hub2.close();
      await cdn.close();
    }
  });

  it("keeps the token on a redirect within the hub's own origin", async () => {
    hub.add({ repo: 'org/gated', path: 'same.gguf', content: randomBytes(1024) });
    await downloadFile({ url: resolveUrl(hub.endpoint, 'org/gated', 'same.gguf'), dest: path.join(downloads, 'same.gguf'), token: 'hf_secret' });
    const cdnHits = hub.requests.filter((q) => q.url.startsWith('/cdn/'));
    assert.ok(cdnHits.length > 0 && cdnHits.every((q) => q.authorization === 'Bearer hf_secret'));
  });

  describe('a file replaced on the server between a cut transfer and its resume', () => {
    // A mirror that sends no hash, so only the version check stands between the two versions.
    const v1 = randomBytes(2 * MiB);
    const v2 = randomBytes(2 * MiB);
    const cutFirst = async (file: string) => {
      hub.add({ repo: 'org/changing', path: file, content: v1, noHash: true, cutAfter: 700_000, cutTimes: 1 });
      const dest = path.join(downloads, file);
      await assert.rejects(downloadFile({ url: resolveUrl(hub.endpoint, 'org/changing', file), dest }), (e: DownloadError) => e.code === 'network');
      assert.ok(fs.statSync(`${dest}.part`).size > 0);
      return dest;
    };

    it('replaced before the resume starts (a new ETag): starts over and ends with the new version whole', async () => {
      const dest = await cutFirst('a.gguf');
      hub.add({ repo: 'org/changing', path: 'a.gguf', content: v2, noHash: true });
      const r = await downloadFile({ url: resolveUrl(hub.endpoint, 'org/changing', 'a.gguf'), dest });
      assert.strictEqual(r.resumedFrom, 0);
      assert.strictEqual(sha(fs.readFileSync(dest)), sha(v2));
      assert.strictEqual(r.sha256, sha(v2));
    });

    it('replaced between the probe and the ranged GET: If-Range brings the new version whole', async () => {
      const dest = await cutFirst('b.gguf');
      hub.add({ repo: 'org/changing', path: 'b.gguf', content: v1, noHash: true, replaceOnRangedGet: v2 });
      const r = await downloadFile({ url: resolveUrl(hub.endpoint, 'org/changing', 'b.gguf'), dest });
      assert.ok(
        hub.requests.some((q) => q.range && q.ifRange),
        'the resume sent no If-Range',
      );
      assert.strictEqual(r.resumedFrom, 0);
      assert.strictEqual(sha(fs.readFileSync(dest)), sha(v2));
      assert.strictEqual(r.sha256, sha(v2));
    });

    it('a 206 that does not start where asked is not appended', async () => {
      const dest = await cutFirst('c.gguf');
      hub.add({ repo: 'org/changing', path: 'c.gguf', content: v1, noHash: true, rangeOffBy: 1000 });
      const r = await downloadFile({ url: resolveUrl(hub.endpoint, 'org/changing', 'c.gguf'), dest });
      assert.strictEqual(r.resumedFrom, 0);
      assert.strictEqual(sha(fs.readFileSync(dest)), sha(v1));
    });

    it('with no hash and no validator to compare, starts over rather than resume on size alone', async () => {
      hub.add({ repo: 'org/changing', path: 'd.gguf', content: v1, noHash: true, noValidators: true, cutAfter: 700_000, cutTimes: 1 });
      const dest = path.join(downloads, 'd.gguf');
      await assert.rejects(downloadFile({ url: resolveUrl(hub.endpoint, 'org/changing', 'd.gguf'), dest }));
      hub.add({ repo: 'org/changing', path: 'd.gguf', content: v2, noHash: true, noValidators: true });
      const r = await downloadFile({ url: resolveUrl(hub.endpoint, 'org/changing', 'd.gguf'), dest });
      assert.strictEqual(r.resumedFrom, 0);
      assert.strictEqual(sha(fs.readFileSync(dest)), sha(v2));
    });

    it('resumes when the version is unchanged (the same ETag)', async () => {
      const dest = await cutFirst('e.gguf');
      const r = await downloadFile({ url: resolveUrl(hub.endpoint, 'org/changing', 'e.gguf'), dest });
      assert.ok(r.resumedFrom > 0);
      assert.strictEqual(sha(fs.readFileSync(dest)), sha(v1));
    });
  });
});
