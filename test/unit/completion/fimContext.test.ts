import * as assert from 'assert';
import { buildFimContext } from '../../../src/core/completion/fimContext';

const doc = (text: string, line: number, character: number) => ({ fileName: 'a.py', languageId: 'python', text, line, character });

describe('buildFimContext', () => {
  it('splits at the cursor into prefix and suffix', () => {
    const c = buildFimContext(doc('def f(x):\n    return x\n\nprint(f(1))', 1, 11));
    assert.strictEqual(c.prefix, 'def f(x):\n    return ');
    assert.strictEqual(c.suffix, 'x\n\nprint(f(1))');
    assert.strictEqual(c.linePrefix, '    return ');
    assert.strictEqual(c.lineSuffix, 'x');
  });

  it('limits the windows by lines so the prefix start is stable while typing on one line', () => {
    const text = Array.from({ length: 100 }, (_, i) => `line${i}`).join('\n');
    const a = buildFimContext(doc(text, 50, 2), { prefixLines: 10, suffixLines: 5, maxChars: 1e6 });
    const b = buildFimContext(doc(text, 50, 5), { prefixLines: 10, suffixLines: 5, maxChars: 1e6 });
    assert.ok(a.prefix.startsWith('line40\n'));
    assert.ok(b.prefix.startsWith('line40\n'));
    assert.strictEqual(a.suffix.split('\n').length, 6);
    assert.ok(a.suffix.endsWith('line55'));
  });

  it('caps pathological lines by characters, keeping the text nearest the cursor', () => {
    const long = 'x'.repeat(50_000);
    const c = buildFimContext(doc(long + 'CURSOR' + long, 0, 50_006), { prefixLines: 10, suffixLines: 10, maxChars: 1000 });
    assert.strictEqual(c.prefix.length, 1000);
    assert.ok(c.prefix.endsWith('CURSOR'));
    assert.strictEqual(c.suffix.length, 1000);
  });
});
