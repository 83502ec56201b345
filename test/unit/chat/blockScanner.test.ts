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

  it('scans a stream in linear time: 4 times the text takes about 4 times as long, not 16', function () {
    this.timeout(30_000);
    // Fed as a chat stream is: the whole text so far, 4 KiB more each time, inside an open fence.
    const scanMs = (lines: number): number => {
      const text = '```\n' + ('x'.repeat(63) + '\n').repeat(lines);
      const s = new BlockScanner();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < text.length; i += 4096) s.scan(text.slice(0, i + 4096));
      assert.ok(s.fence && s.fence.codeStart === 4, 'the fence stays open to the end');
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    // The best of a few runs, so a busy machine's pauses do not count; a quadratic scan takes 16x.
    let small = Infinity;
    for (let r = 0; r < 5; r++) small = Math.min(small, scanMs(16_384)); // 1 MiB
    const bound = 10 * small + 5;
    let large = Infinity;
    for (let r = 0; r < 3 && large > bound; r++) large = Math.min(large, scanMs(65_536)); // 4 MiB
    assert.ok(
      large <= bound,
      `1 MiB took ${small.toFixed(1)} ms, 4 MiB ${large.toFixed(1)} ms (${(large / small).toFixed(1)}x; linear is ~4x, at most 10x allowed)`,
    );
  });
});
