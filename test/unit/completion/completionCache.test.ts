import * as assert from 'assert';
import { LruCache, TypeThroughCache } from '../../../src/core/completion/completionCache';
import { TextDocumentLines } from '../../../src/core/completion/document';

describe('LruCache', () => {
  it('evicts the least recently used entry', () => {
    const c = new LruCache<number>(2);
    c.set('a', 1);
    c.set('b', 2);
    assert.strictEqual(c.get('a'), 1); // a is now the most recent
    c.set('c', 3);
    assert.strictEqual(c.has('b'), false);
    assert.strictEqual(c.get('a'), 1);
    assert.strictEqual(c.get('c'), 3);
    assert.strictEqual(c.size, 2);
  });
});

describe('TypeThroughCache', () => {
  const setup = () => {
    const doc = new TextDocumentLines('def f(x):\n    return \n', 'file:///a.py', 'python');
    const cache = new TypeThroughCache();
    cache.remember({ uri: doc.uri, anchor: { line: 1, character: 11 }, linePrefix: '    return ', lineSuffix: '', text: 'x * 2\nprint(f(1))' });
    return { doc, cache };
  };

  it('serves the rest of the suggestion while its start is typed', () => {
    const { doc, cache } = setup();
    let cur = { line: 1, character: 11 };
    assert.strictEqual(cache.lookup(doc, cur), undefined, 'nothing typed yet: the provider asks the engine');
    for (const [ch, rest] of [
      ['x', ' * 2\nprint(f(1))'],
      [' ', '* 2\nprint(f(1))'],
      ['*', ' 2\nprint(f(1))'],
    ] as const) {
      cur = doc.insert(cur, ch);
      assert.strictEqual(cache.lookup(doc, cur)?.rest, rest);
    }
  });

  it('follows the typing across a line break', () => {
    const { doc, cache } = setup();
    const cur = doc.insert({ line: 1, character: 11 }, 'x * 2\npr');
    assert.strictEqual(cache.lookup(doc, cur)?.rest, 'int(f(1))');
  });

  it('stops when the typing departs from the suggestion, or text after the cursor changed', () => {
    const { doc, cache } = setup();
    const cur = doc.insert({ line: 1, character: 11 }, 'y');
    assert.strictEqual(cache.lookup(doc, cur), undefined);
    const s2 = setup();
    const c2 = s2.doc.insert({ line: 1, character: 11 }, 'x)');
    assert.strictEqual(s2.cache.lookup(s2.doc, { line: 1, character: 12 }), undefined, 'a ")" appeared after the cursor');
    void c2;
  });

  it('does not serve an empty rest (the whole suggestion was typed)', () => {
    const doc = new TextDocumentLines('x = ', 'u', 'python');
    const cache = new TypeThroughCache();
    cache.remember({ uri: 'u', anchor: { line: 0, character: 4 }, linePrefix: 'x = ', lineSuffix: '', text: '42' });
    const cur = doc.insert({ line: 0, character: 4 }, '42');
    assert.strictEqual(cache.lookup(doc, cur), undefined);
  });
});
