import * as assert from 'assert';
import { buildFimContext } from '../../../src/core/completion/fimContext';
import { postProcessCompletion, trimSuffixOverlap } from '../../../src/core/completion/postProcess';

const ctxAt = (text: string, line: number, character: number) => buildFimContext({ fileName: 'a.ts', languageId: 'typescript', text, line, character });

describe('postProcessCompletion', () => {
  it('keeps only the first line when the cursor is mid-line', () => {
    const ctx = ctxAt('foo(bar)', 0, 4);
    assert.strictEqual(postProcessCompletion('a, b\nmore', ctx, { maxLines: 8 }), 'a, b');
  });

  it('allows several lines at the end of a line, up to maxLines', () => {
    const ctx = ctxAt('function f() {', 0, 14);
    assert.strictEqual(postProcessCompletion('\n  return 1;\n}\n\n', ctx, { maxLines: 8 }), '\n  return 1;\n}');
    assert.strictEqual(postProcessCompletion('\n  a;\n  b;\n  c;', ctx, { maxLines: 2 }), '\n  a;');
  });

  it('drops whitespace-only output', () => {
    assert.strictEqual(postProcessCompletion('   \n  ', ctxAt('x = ', 0, 4), { maxLines: 8 }), undefined);
  });

  it('drops a suggestion that repeats the previous line', () => {
    const ctx = ctxAt('import os\n', 1, 0);
    assert.strictEqual(postProcessCompletion('import os', ctx, { maxLines: 8 }), undefined);
  });

  it('does not duplicate the text after the cursor', () => {
    assert.strictEqual(trimSuffixOverlap('a, b)', ')'), 'a, b');
    assert.strictEqual(trimSuffixOverlap('a, b', ')'), 'a, b');
    const ctx = ctxAt('print()', 0, 6);
    assert.strictEqual(postProcessCompletion('"hi")', ctx, { maxLines: 8 }), '"hi"');
  });
});
