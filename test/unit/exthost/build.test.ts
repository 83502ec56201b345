import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BUNDLE_INPUTS, BUNDLE_OUTPUTS, bundleStaleness } from '../../exthost/build';

// The extension-host runners reuse dist/ only while every bundle is there and newer than all that
// goes into it; a stale webview bundle or an edited esbuild.mjs must trigger a rebuild too.

describe('exthost build: when dist/ may be reused', () => {
  let root: string;
  let t = 1_700_000_000;
  const write = (rel: string, at: number) => {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, rel);
    fs.utimesSync(p, at, at);
  };
  const touch = (rel: string, at: number) => fs.utimesSync(path.join(root, rel), at, at);

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-exthost-build-'));
    t = 1_700_000_000;
    for (const f of ['src/extension.ts', 'src/core/a.ts', 'media/chat.ts', 'media/chat.css', ...BUNDLE_INPUTS.files]) write(f, t);
    for (const d of ['src/core', 'src', 'media']) touch(d, t);
    for (const f of BUNDLE_OUTPUTS) write(f, t + 10);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a complete dist/ newer than every input is reused', () => {
    assert.strictEqual(bundleStaleness(root), undefined);
  });

  it('any missing bundle, not just extension.js, means a build', () => {
    fs.rmSync(path.join(root, 'dist/media/chat.js'));
    assert.strictEqual(bundleStaleness(root), 'dist/media/chat.js is missing');
  });

  for (const input of ['src/core/a.ts', 'media/chat.css', 'esbuild.mjs', 'package.json', 'node_modules/.package-lock.json', 'tsconfig.json']) {
    it(`${input} newer than the oldest bundle means a build`, () => {
      touch('dist/peer.js', t + 5);
      touch(input, t + 7);
      assert.strictEqual(bundleStaleness(root), `dist/peer.js is older than ${input}`);
    });
  }

  it('a source file removed (its folder changed) means a build', () => {
    fs.rmSync(path.join(root, 'src/core/a.ts'));
    touch('src/core', t + 20);
    assert.strictEqual(bundleStaleness(root), 'dist/extension.js is older than src/core');
  });
});
