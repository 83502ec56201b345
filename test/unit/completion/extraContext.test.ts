import * as assert from 'assert';
import { chunkAround, DEFAULT_EXTRA_OPTIONS, ExtraContext, similarity } from '../../../src/core/completion/extraContext';

const lines = (tag: string, n = 20) => Array.from({ length: n }, (_, i) => `const ${tag}_${i} = compute(${i});`);

describe('ExtraContext ring', () => {
  it('queues picks and moves one into the ring per idle update, appending at the end', () => {
    const r = new ExtraContext({ ...DEFAULT_EXTRA_OPTIONS, maxChunks: 3 });
    assert.ok(r.pick('a.ts', lines('a'), 'open'));
    assert.ok(r.pick('b.ts', lines('b'), 'edit'));
    assert.strictEqual(r.size, 0, 'nothing reaches the prompt while the user types');
    const g0 = r.generation;
    assert.strictEqual(r.update(), true);
    assert.strictEqual(r.update(), true);
    assert.strictEqual(r.update(), false);
    assert.strictEqual(r.generation, g0 + 2);
    assert.deepStrictEqual(
      r.chunks(1e9).map((c) => c.filename),
      ['a.ts', 'b.ts'],
    );
  });

  it('evicts from the front when full, so the surviving chunks keep their order', () => {
    const r = new ExtraContext({ ...DEFAULT_EXTRA_OPTIONS, maxChunks: 2 });
    for (const t of ['a', 'b', 'c']) {
      r.pick(`${t}.ts`, lines(t), 'open');
      r.update();
    }
    assert.deepStrictEqual(
      r.chunks(1e9).map((c) => c.filename),
      ['b.ts', 'c.ts'],
    );
  });

  it('does not add a chunk nearly the same as one held', () => {
    const r = new ExtraContext(DEFAULT_EXTRA_OPTIONS);
    r.pick('a.ts', lines('a'), 'open');
    r.update();
    const edited = lines('a');
    edited[19] = 'const changed = 1;';
    assert.strictEqual(r.pick('a.ts', edited, 'edit'), false);
    assert.strictEqual(r.pick('a.ts', lines('a').slice(0, 5).concat(lines('z', 15)), 'edit'), true);
  });

  it('keeps the newest chunks within the token budget, dropping the oldest', () => {
    const r = new ExtraContext(DEFAULT_EXTRA_OPTIONS);
    for (const t of ['a', 'b', 'c']) {
      r.pick(`${t}.ts`, lines(t), 'open');
      r.update();
    }
    const one = r.describe()[2].tokens;
    assert.deepStrictEqual(
      r.chunks(one * 2 + 1).map((c) => c.filename),
      ['b.ts', 'c.ts'],
    );
    assert.deepStrictEqual(r.chunks(0), []);
  });

  it('ignores tiny, blank and binary chunks; caps chunk lines and line length', () => {
    const r = new ExtraContext({ ...DEFAULT_EXTRA_OPTIONS, chunkLines: 10, maxLineChars: 50 });
    assert.strictEqual(r.pick('a', ['', '  ', 'x'], 'open'), false);
    assert.strictEqual(r.pick('b', ['a\u0000b', 'c', 'd', 'e'], 'open'), false);
    assert.ok(
      r.pick(
        'c',
        lines('c', 100).map((l) => l + 'y'.repeat(500)),
        'open',
      ),
    );
    r.update();
    const [c] = r.chunks(1e9);
    assert.strictEqual(c.text.split('\n').length - 1, 10);
    assert.ok(c.text.split('\n').every((l) => l.length <= 50));
  });

  it('without stable order (baseline) puts the newest first at once', () => {
    const r = new ExtraContext({ ...DEFAULT_EXTRA_OPTIONS, stableOrder: false });
    r.pick('a.ts', lines('a'), 'open');
    r.pick('b.ts', lines('b'), 'open');
    assert.deepStrictEqual(
      r.chunks(1e9).map((c) => c.filename),
      ['b.ts', 'a.ts'],
    );
  });

  it('similarity is Jaccard over line sets; chunkAround clamps to the document', () => {
    assert.strictEqual(similarity(new Set(['a', 'b']), new Set(['b', 'c'])), 1 / 3);
    assert.deepStrictEqual(chunkAround(1000, 5, 64), { start: 0, end: 64 });
    assert.deepStrictEqual(chunkAround(1000, 500, 64), { start: 468, end: 532 });
    assert.deepStrictEqual(chunkAround(1000, 999, 64), { start: 936, end: 1000 });
    assert.deepStrictEqual(chunkAround(10, 5, 64), { start: 0, end: 10 });
  });
});
