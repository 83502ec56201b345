import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as yauzl from 'yauzl';

// Builds the real VSIX with vsce and checks what is inside: everything that runs, nothing that
// does not (sources, tests, node_modules, maps, caches).

const root = path.resolve(__dirname, '../..');

function listZip(file: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const names: string[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        names.push(e.fileName);
        zip.readEntry();
      });
      zip.on('end', () => resolve(names));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

describe('VSIX package', function () {
  this.timeout(180_000);
  let entries: string[] = [];
  let manifest: Record<string, unknown>;

  before(async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-vsix-')), 'strata.vsix');
    execFileSync(process.execPath, ['esbuild.mjs', '--production'], { cwd: root, stdio: 'pipe' });
    execFileSync(process.execPath, [require.resolve('@vscode/vsce/vsce'), 'package', '--no-dependencies', '--out', out], { cwd: root, stdio: 'pipe' });
    entries = await listZip(out);
    manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  });

  it('holds the bundles, the manifest, README, CHANGELOG and the licence', () => {
    for (const f of [
      'extension/dist/extension.js',
      'extension/dist/sidecar.js',
      'extension/dist/peer.js',
      'extension/dist/media/chat.js',
      'extension/package.json',
      'extension/readme.md',
      'extension/changelog.md',
      'extension/LICENSE.txt',
      'extension.vsixmanifest',
    ]) {
      assert.ok(
        entries.some((e) => e.toLowerCase() === f.toLowerCase()),
        `VSIX lacks ${f}; it has:\n${entries.join('\n')}`,
      );
    }
  });

  it('holds the media of every walkthrough step', () => {
    const walkthroughs = (manifest.contributes as { walkthroughs?: { steps: { media: { markdown?: string } }[] }[] }).walkthroughs ?? [];
    const media = walkthroughs.flatMap((w) => w.steps.map((s) => s.media.markdown)).filter((m): m is string => !!m);
    assert.ok(media.length >= 5, `walkthrough media: ${media.join(', ')}`);
    for (const m of media) assert.ok(entries.includes(`extension/${m}`), `VSIX lacks ${m}`);
  });

  it('holds nothing that does not run', () => {
    const bad = entries.filter((e) => /^extension\/(src|test|scripts|bench|native|node_modules|\.ci|\.test-artifacts)\//.test(e) || /\.(ts|map)$/.test(e));
    assert.deepStrictEqual(bad, []);
  });

  it('declares the id, engine and contributions the README promises', () => {
    assert.strictEqual(`${manifest.publisher}.${manifest.name}`, 'strata.strata-coder');
    assert.strictEqual((manifest.engines as Record<string, string>).vscode, '^1.100.0');
    const commands = (manifest.contributes as { commands: { command: string; category: string }[] }).commands;
    assert.ok(commands.length > 0);
    for (const c of commands) {
      assert.ok(c.command.startsWith('strata.'), c.command);
      assert.strictEqual(c.category, 'Strata');
    }
    const props = Object.keys((manifest.contributes as { configuration: { properties: object } }).configuration.properties);
    for (const p of props) assert.ok(p.startsWith('strata.'), p);
  });
});
