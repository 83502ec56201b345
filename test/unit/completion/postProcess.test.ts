import * as assert from 'assert';
import { TextDocumentLines } from '../../../src/core/completion/document';
import { buildFimContext, FimContext } from '../../../src/core/completion/fimContext';
import { postProcessCompletion, trimSuffixOverlap, unclosedOpeners } from '../../../src/core/completion/postProcess';

function ctxAt(text: string, line: number, character: number): FimContext {
  const r = buildFimContext(new TextDocumentLines(text, 'file:///a.ts', 'typescript'), { line, character });
  assert.ok(r.ok);
  return r.ctx;
}
const pp = (raw: string, ctx: FimContext, maxLines = 8) => postProcessCompletion(raw, ctx, { maxLines });

describe('postProcessCompletion', () => {
  it('keeps only the first line when the cursor is mid-line', () => {
    assert.strictEqual(pp('a, b\nmore', ctxAt('foo(bar)', 0, 4)), 'a, b');
  });

  it('keeps only the first line at the end of a line that opens no block', () => {
    assert.strictEqual(pp('1;\nconst y = 2;', ctxAt('const x = ', 0, 10)), '1;');
  });

  it('allows several lines at a block start, up to maxLines, and stops where the block closes', () => {
    const ctx = ctxAt('function f() {', 0, 14);
    assert.strictEqual(pp('\n  return 1;\n}\n\nfunction g() {\n  return 2;\n}', ctx), '\n  return 1;\n}');
    assert.strictEqual(pp('\n  a;\n  b;\n  c;', ctx, 2), '\n  a;');
  });

  it('stops a Python block where the indentation returns to the opening line', () => {
    const ctx = ctxAt('def f(x):', 0, 9);
    assert.strictEqual(pp('\n    y = x * 2\n    return y\n\ndef g():\n    pass', ctx), '\n    y = x * 2\n    return y');
  });

  it('on a blank line inside a block, stops at a dedent and at a bracket that closes what it did not open', () => {
    const text = 'function f() {\n  \n}';
    const ctx = ctxAt(text, 1, 2);
    assert.strictEqual(ctx.multiLine, true);
    assert.strictEqual(pp('const a = 1;\n  return a;\n}\n', ctx), 'const a = 1;\n  return a;');
    const py = ctxAt('def f():\n    x = 1\n    \n', 2, 4);
    assert.strictEqual(pp('y = 2\n    return x + y\nprint(f())', py), 'y = 2\n    return x + y');
  });

  it('lets the first line close what the line before the cursor opened', () => {
    assert.strictEqual(pp('a, b)', ctxAt('foo(', 0, 4)), 'a, b)');
  });

  it('drops lines that re-type the next line of the file', () => {
    const ctx = ctxAt('function f() {\n  \n  return total;\n}', 1, 2);
    assert.strictEqual(pp('let total = 0;\n  return total;\n}', ctx), 'let total = 0;');
  });

  it('drops whitespace-only output', () => {
    assert.strictEqual(pp('   \n  ', ctxAt('x = ', 0, 4)), undefined);
    assert.strictEqual(pp('', ctxAt('x = ', 0, 4)), undefined);
  });

  it('drops a suggestion that repeats the previous line or the next one', () => {
    assert.strictEqual(pp('import os', ctxAt('import os\n', 1, 0)), undefined);
    assert.strictEqual(pp('return x', ctxAt('def f(x):\n    \n    return x', 1, 4)), undefined);
  });

  it('does not duplicate the text after the cursor', () => {
    assert.strictEqual(trimSuffixOverlap('a, b)', ')'), 'a, b');
    assert.strictEqual(trimSuffixOverlap('a, b', ')'), 'a, b');
    assert.strictEqual(trimSuffixOverlap('"hi")', '");'), '"hi');
    assert.strictEqual(pp('"hi")', ctxAt('print()', 0, 6)), '"hi"');
    assert.strictEqual(pp(')', ctxAt('print()', 0, 6)), undefined);
  });

  it('normalizes CRLF output and trims trailing whitespace', () => {
    assert.strictEqual(pp('\r\n  return 1;  \r\n}', ctxAt('function f() {', 0, 14)), '\n  return 1;\n}');
  });

  it('finds unclosed openers, ignoring strings and comments', () => {
    assert.deepStrictEqual(unclosedOpeners('if (a) { call("(", [1'), ['{', '(', '[']);
    assert.deepStrictEqual(unclosedOpeners('x = 1  // (('), []);
  });
});
