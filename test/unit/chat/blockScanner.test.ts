import * as assert from 'assert';
import { BlockScanner } from '../../../media/streamBlocks';

describe('chat webview: BlockScanner (which blocks are finished while streaming)', () => {
  function scanAll(text: string, step = 1): BlockScanner {
    const s = new BlockScanner();
    for (let i = step; i < text.length + step; i += step) s.scan(text.slice(0, i));
    return s;
  }

  it('cuts after a blank line outside code', () => {
    const t = 'para one\n\npara two is stil';
    const s = scanAll(t);
    assert.strictEqual(t.slice(0, s.boundary), 'para one\n\n');
    assert.strictEqual(s.fence, undefined);
  });

  it('cuts before an opening fence and reports it open, with its language', () => {
    const t = 'Here:\n```ts\nconst a = 1;\n\nconst b';
    const s = scanAll(t, 3);
    assert.strictEqual(t.slice(0, s.boundary), 'Here:\n');
    assert.ok(s.fence);
    assert.strictEqual(s.fence.lang, 'ts');
    assert.strictEqual(t.slice(s.fence.codeStart), 'const a = 1;\n\nconst b');
  });

  it('ignores blank lines and fence-like lines of another kind inside a fence', () => {
    const t = '~~~~md\n```\n\n```\n~~~\nstill code\n';
    const s = scanAll(t);
    assert.ok(s.fence, 'a shorter or different closing fence must not close it');
  });

  it('cuts after the closing fence', () => {
    const t = '```py\nprint(1)\n```\nafter';
    const s = scanAll(t, 2);
    assert.strictEqual(s.fence, undefined);
    assert.strictEqual(t.slice(0, s.boundary), '```py\nprint(1)\n```\n');
  });

  it('does not take inline backticks with an info string containing backticks for a fence', () => {
    const s = scanAll('``` not a fence ` here\nx\n');
    assert.strictEqual(s.fence, undefined);
  });

  it('scans a 1 MB stream in linear time', () => {
    const line = 'x'.repeat(63) + '\n';
    const text = '```\n' + line.repeat(16_384);
    const s = new BlockScanner();
    const t0 = Date.now();
    for (let i = 0; i < text.length; i += 4096) s.scan(text.slice(0, i + 4096));
    assert.ok(s.fence);
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  });
});
