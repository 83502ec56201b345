import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ArchiveKind, extractArchive } from '../../../src/daemon/installer/downloadArchive';
import { installLlamaRelease } from '../../../src/daemon/installer/downloadLlamaServer';
import { LlamaDownloadError } from '../../../src/daemon/installer/llamaDownloadError';
import { ArchiveFile, listTree, startHttpServer, writeTarGz, writeZip } from './archives';

// Release archives are unpacked by the real extractor into a folder inside a scratch folder; an
// archive that tries to put anything outside (entry names, links, links followed through other
// links) must be refused whole and leave the scratch folder holding nothing but the archive and
// the destination. Links that stay inside, as in llama.cpp's releases, must still work.

/** d1/d2/up → ../.. is harmless alone; d1/d2/up/d1/d2/up2 → ../../.. then lands one level above the folder. */
const chain: ArchiveFile[] = [
  { name: 'd1/' },
  { name: 'd1/d2/' },
  { name: 'payload', data: Buffer.from('pwned\n') },
  { name: 'd1/d2/up', symlink: '../..' },
  { name: 'd1/d2/up/d1/d2/up2', symlink: '../../..' },
];

describe('installer: archives cannot write outside their folder', () => {
  let scratch: string;
  let dest: string;
  beforeEach(() => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-archive-'));
    dest = path.join(scratch, 'x');
  });
  afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

  const write = (kind: ArchiveKind, files: ArchiveFile[]): string => {
    const file = path.join(scratch, kind === 'zip' ? 'a.zip' : 'a.tar.gz');
    if (kind === 'zip') writeZip(file, files);
    else writeTarGz(file, files, { impliedDirs: false });
    return file;
  };

  const refused = async (kind: ArchiveKind, files: ArchiveFile[], message = /refusing to unpack it/) => {
    const file = write(kind, files);
    await assert.rejects(extractArchive(file, kind, dest), (e: Error) => {
      assert.match(e.message, message);
      return true;
    });
    assert.deepStrictEqual(fs.readdirSync(scratch).sort(), [path.basename(file), 'x'].sort(), 'something was written next to the destination');
  };

  for (const kind of ['tar.gz', 'zip'] as const) {
    it(`${kind}: a chain of symlinks, then a symlink made through it, is refused and nothing lands outside`, async () => {
      await refused(kind, [...chain, { name: 'd1/d2/up2/evil', symlink: 'payload' }]);
    });
  }

  it('tar.gz: a chain of symlinks, then a hard link written through it, is refused and nothing lands outside', async () => {
    await refused('tar.gz', [...chain, { name: 'd1/d2/up2/pwned', hardlink: 'payload' }]);
  });

  it('zip: a chain of symlinks, then a file written through it, is refused and nothing lands outside', async () => {
    await refused('zip', [...chain, { name: 'd1/d2/up2/pwned', data: Buffer.from('pwned\n') }]);
  });

  for (const kind of ['tar.gz', 'zip'] as const) {
    it(`${kind}: links and names that leave the folder are refused`, async () => {
      await refused(kind, [{ name: 'lib/' }, { name: 'lib/out', symlink: '../../etc' }], /link "lib\/out" points outside its folder/);
      await refused(kind, [{ name: 'abs', symlink: '/etc/passwd' }], /points outside its folder/);
      await refused(
        kind,
        [
          { name: 'a', symlink: 'b/..' },
          { name: 'b', symlink: '.' },
        ],
        /link "a" points outside its folder/,
      );
      await refused(
        kind,
        [
          { name: 'd1/d2/up', symlink: '../..' },
          { name: 'up2', symlink: 'd1/d2/up/..' },
        ],
        /link "up2" points outside its folder/,
      );
      await refused(
        kind,
        [
          { name: 'loop1', symlink: 'loop2' },
          { name: 'loop2', symlink: 'loop1' },
        ],
        /points outside its folder|loop/,
      );
      await refused(kind, [{ name: '../escaped', data: Buffer.from('x') }], /unsafe path|refusing/);
    });

    it(`${kind}: links that stay inside (a shared-library chain in any order, ../lib) are kept`, async () => {
      const file = write(kind, [
        { name: 'bin/' },
        { name: 'lib/' },
        { name: 'lib/libggml.so', symlink: 'libggml.so.0' },
        { name: 'lib/libggml.so.0', symlink: 'libggml.so.0.9.4' },
        { name: 'lib/libggml.so.0.9.4', data: Buffer.from('ELF?') },
        { name: 'bin/llama-server', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
        { name: 'bin/libggml.so.0', symlink: '../lib/libggml.so.0' },
        ...(kind === 'tar.gz' ? [{ name: 'bin/llama-cli', hardlink: 'bin/llama-server' }] : []),
      ]);
      await extractArchive(file, kind, dest);
      assert.strictEqual(fs.readlinkSync(path.join(dest, 'lib', 'libggml.so')), 'libggml.so.0');
      assert.strictEqual(fs.readFileSync(path.join(dest, 'bin', 'libggml.so.0'), 'utf8'), 'ELF?');
      assert.ok(fs.statSync(path.join(dest, 'bin', 'llama-server')).mode & 0o100, 'lost its exec bit');
      if (kind === 'tar.gz') assert.strictEqual(fs.readFileSync(path.join(dest, 'bin', 'llama-cli'), 'utf8'), '#!/bin/sh\n');
      assert.deepStrictEqual(
        listTree(scratch).filter((p) => !p.startsWith('x/') && p !== 'x'),
        [path.basename(file)],
      );
    });
  }

  it('a release whose asset name climbs out of the temp folder is not downloaded', async () => {
    // The release API answer names the asset; the archive is written under that name before it is checked or unpacked.
    const http = await startHttpServer();
    try {
      const archive = path.join(scratch, 'payload.tar.gz');
      writeTarGz(archive, [{ name: 'x/llama-server', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 }]);
      const name = 'llama-b1-bin-ubuntu-/../../../../../pwned-x64.tar.gz';
      const digest = crypto.createHash('sha256').update(fs.readFileSync(archive)).digest('hex');
      http.routes.set('/releases/latest', {
        json: {
          tag_name: 'b1',
          assets: [{ name, browser_download_url: `${http.url}/dl/a.tar.gz`, size: fs.statSync(archive).size, digest: `sha256:${digest}` }],
        },
      });
      http.routes.set('/dl/a.tar.gz', { file: archive });
      const cacheDir = path.join(scratch, 'cache');
      const err = await installLlamaRelease({ releaseUrl: `${http.url}/releases/latest`, cacheDir, platform: 'linux', arch: 'x64', verify: false }).catch(
        (e: Error) => e,
      );
      assert.deepStrictEqual(
        listTree(scratch).filter((p) => /pwned/.test(p)),
        [],
        'the archive was written outside the temp folder',
      );
      assert.ok(err instanceof LlamaDownloadError && err.code === 'NO_ASSET', String(err));
      assert.ok(!http.hits.includes('/dl/a.tar.gz'), 'the asset was downloaded');
    } finally {
      await http.close();
    }
  });
});
