import * as assert from 'assert';
import { TextDocumentLines } from '../../../src/core/completion/document';
import { buildFimContext, DEFAULT_FIM_OPTIONS, FimContext, FimContextOptions, sliceEnd, sliceStart, wellFormed } from '../../../src/core/completion/fimContext';

const doc = (text: string) => new TextDocumentLines(text, 'file:///a.py', 'python');
const build = (text: string, line: number, character: number, opts: Partial<FimContextOptions> = {}): FimContext => {
  const r = buildFimContext(doc(text), { line, character }, { ...DEFAULT_FIM_OPTIONS, ...opts });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r.ctx;
};
const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line${i}`).join('\n');

describe('buildFimContext', () => {
  it('splits at the cursor into whole prefix lines, the line prefix (prompt) and the suffix', () => {
    const c = build('def f(x):\n    return x\n\nprint(f(1))', 1, 11);
    assert.strictEqual(c.inputPrefix, 'def f(x):\n');
    assert.strictEqual(c.prompt, '    return ');
    assert.strictEqual(c.inputSuffix, 'x\n\nprint(f(1))');
    assert.strictEqual(c.lineSuffix, 'x');
    assert.strictEqual(c.previousLine, 'def f(x):');
    assert.strictEqual(c.nextNonBlankLine, 'print(f(1))');
    assert.strictEqual(c.indent, 4);
  });

  it('treats CRLF and LF documents alike', () => {
    const a = build('a = 1\r\nb = 2\r\nc = ', 2, 4);
    const b = build('a = 1\nb = 2\nc = ', 2, 4);
    assert.deepStrictEqual(a, b);
    assert.ok(!a.inputPrefix.includes('\r'));
  });

  it('keeps the prefix start fixed while typing on one line', () => {
    const a = build(numbered(400), 300, 2, { stableWindow: false });
    const b = build(numbered(400), 300, 5, { stableWindow: false });
    assert.strictEqual(a.inputPrefix, b.inputPrefix);
    assert.strictEqual(a.prefixStartLine, 300 - 256);
    assert.ok(a.inputSuffix.endsWith('line364'));
  });

  it('with stableWindow, moves the prefix start only every 32 lines', () => {
    const starts = new Set<number>();
    for (let line = 288; line < 320; line++) starts.add(build(numbered(600), line, 0).prefixStartLine);
    assert.deepStrictEqual([...starts], [32]);
    const over96 = new Set<number>();
    for (let line = 288; line < 384; line++) over96.add(build(numbered(600), line, 0).prefixStartLine);
    assert.deepStrictEqual([...over96], [32, 64, 96]);
    const unstable = new Set<number>();
    for (let line = 300; line < 332; line++) unstable.add(build(numbered(600), line, 0, { stableWindow: false }).prefixStartLine);
    assert.strictEqual(unstable.size, 32);
  });

  it('limits the prefix by estimated tokens, still on the grid', () => {
    const dense = Array.from({ length: 600 }, (_, i) => `    value_${i} = compute(alpha[${i}], beta[${i}]) + gamma(${i}) * delta`).join('\n');
    const c = build(dense, 500, 4, { prefixTokens: 600 });
    assert.ok(c.prefixTokens <= 600, `prefix tokens ${c.prefixTokens}`);
    assert.ok(c.prefixStartLine > 500 - 256);
    assert.strictEqual(c.prefixStartLine % 32, 0);
    const d = build(dense, 501, 4, { prefixTokens: 600 });
    assert.strictEqual(d.prefixStartLine, c.prefixStartLine);
  });

  it('limits the suffix by lines and estimated tokens', () => {
    const c = build(numbered(400), 100, 0, { suffixLines: 10 });
    assert.strictEqual(c.inputSuffix.split('\n').length, 11);
    const t = build(numbered(400), 100, 0, { suffixTokens: 20 });
    assert.ok(t.suffixTokens <= 20);
    assert.ok(t.inputSuffix.split('\n').length < 20);
  });

  it('caps long lines (a 5 MB minified line) and skips a cursor line that is too long', () => {
    const long = 'x'.repeat(5_000_000);
    const c = build(`${long}\nshort = 1\n`, 1, 5);
    assert.ok(c.inputPrefix.length <= DEFAULT_FIM_OPTIONS.maxLineChars + 1);
    const r = buildFimContext(doc(`a\n${long}`), { line: 1, character: 2_500_000 });
    assert.strictEqual(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /5,000,000 characters/);
  });

  it('keeps the text nearest the cursor of a long (but allowed) cursor line', () => {
    const c = build('a'.repeat(5000) + 'CURSOR' + 'b'.repeat(3000), 0, 5006);
    assert.strictEqual(c.prompt.length, DEFAULT_FIM_OPTIONS.maxLineChars);
    assert.ok(c.prompt.endsWith('CURSOR'));
    assert.strictEqual(c.lineSuffix.length, DEFAULT_FIM_OPTIONS.maxLineChars);
  });

  it('refuses binary content (NUL characters)', () => {
    const r = buildFimContext(doc('ELF\u0000\u0001\u0002\nabc'), { line: 1, character: 1 });
    assert.deepStrictEqual(r, { ok: false, reason: 'binary content' });
  });

  it('never sends a lone surrogate (cut emoji, broken UTF-16)', () => {
    assert.strictEqual(sliceStart('ab😀cd', 3), 'ab');
    assert.strictEqual(sliceEnd('ab😀cd', 3), 'cd');
    assert.strictEqual(wellFormed('a\ud800b'), 'a\ufffdb');
    const c = build('x = "\udc00"\ny = ', 1, 4);
    assert.ok(!/[\ud800-\udfff]/.test(c.inputPrefix.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')));
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(c)));
  });

  it('allows multi-line output at block starts and on blank lines only', () => {
    assert.strictEqual(build('def f(x):', 0, 9).multiLine, true);
    assert.strictEqual(build('if (a) {', 0, 8).multiLine, true);
    assert.strictEqual(build('def f(x):\n    ', 1, 4).multiLine, true);
    assert.strictEqual(build('x = foo(', 0, 8).multiLine, true);
    assert.strictEqual(build('x = 1 + ', 0, 8).multiLine, false);
    assert.strictEqual(build('foo(bar)', 0, 4).multiLine, false);
  });

  it('reads only the lines of the window (cost independent of file size)', () => {
    const lines = Array.from({ length: 1_000_000 }, (_, i) => `line ${i}`);
    let reads = 0;
    const big = {
      uri: 'u',
      fileName: 'big.txt',
      languageId: 'plaintext',
      version: 1,
      lineCount: lines.length,
      lineAt: (i: number) => {
        reads++;
        return lines[i] ?? '';
      },
    };
    const r = buildFimContext(big, { line: 500_000, character: 3 });
    assert.ok(r.ok);
    assert.ok(reads < 1000, `${reads} line reads`);
  });
});
