import * as assert from 'assert';
import { firstCodeBlock, looksLike, tagMatches } from '../../../bench/quality/codeCheck';
import { documentedFunctions } from '../../../bench/quality/functions';
import { documentAt, HoldoutFile, loadHoldout, pickPositions } from '../../../bench/quality/holdout';
import { scoreLine } from '../../../bench/quality/lineQuality';

// How the quality benchmark scores: what counts as an exact, useful or partly right line, what
// counts as a code block that looks like the language, which functions questions are asked about.

const file = (group: HoldoutFile['group'], languageId: string, text: string): HoldoutFile => ({
  file: `${group}/x`,
  group,
  languageId,
  source: 'test',
  licence: 'MIT',
  lines: text.split('\n'),
});

describe('quality benchmark scoring', () => {
  it('scores the first line of a suggestion against the rest of the line', () => {
    assert.deepStrictEqual(scoreLine('return a + b  \n}', 'return a + b'), { exact: true, leading: 1, useful: true });
    assert.deepStrictEqual(scoreLine('return a', 'return a + b'), { exact: false, leading: 8 / 12, useful: true });
    assert.deepStrictEqual(scoreLine('return b', 'return a + b'), { exact: false, leading: 7 / 12, useful: false });
    assert.deepStrictEqual(scoreLine(undefined, 'return a + b'), { exact: false, leading: 0, useful: false });
  });

  it('finds the first closed fence and checks its language cheaply', () => {
    const b = firstCodeBlock('Here:\n\n```python\ndef f(x):\n    return {"a": (x)}\n```\nDone.');
    assert.deepStrictEqual(b, { info: 'python', code: 'def f(x):\n    return {"a": (x)}', closed: true });
    assert.ok(tagMatches(b!.info, 'python') && !tagMatches(b!.info, 'c-cpp'));
    assert.ok(looksLike(b!.code, 'python'));
    assert.deepStrictEqual(firstCodeBlock('Here:\n```js\nf(1);\nf(2'), { info: 'js', code: 'f(1);\nf(2', closed: false });
    assert.strictEqual(firstCodeBlock('No code here.'), undefined);
    assert.ok(looksLike('const f = (a) => { return a[0]; } // )', 'js-ts'));
    assert.ok(looksLike('int add(int a, int b) {\n  return a + b; /* } */\n}', 'c-cpp'));
    assert.ok(!looksLike('int add(int a, int b) {\n  return a + b;\n', 'c-cpp'), 'unbalanced');
    assert.ok(!looksLike('The function adds two numbers.', 'js-ts'), 'prose');
    assert.ok(!looksLike('int f(void) {\n  return 1;\n}', 'python'), 'C is not Python');
  });

  it('finds documented Python functions and braced functions with or without a doc comment', () => {
    const py = file(
      'python',
      'python',
      'import os\n\ndef add(a, b=1, *rest):\n    """Add two numbers and return their sum.\n\n    More."""\n    s = a + b\n    return s\n\nx = 1\n',
    );
    const [f] = documentedFunctions(py);
    assert.deepStrictEqual(
      { name: f.name, sig: f.signature, summary: f.summary, start: f.start, end: f.end },
      { name: 'add', sig: 'add(a, b)', summary: 'Add two numbers and return their sum.', start: 2, end: 8 },
    );
    const ts = file(
      'js-ts',
      'typescript',
      '/**\n * Returns the larger of two numbers given.\n * @param a first\n */\nexport function max(a: number, b?: number): number {\n  if (a > b) {\n    return a;\n  }\n  return b;\n}\n',
    );
    const [g] = documentedFunctions(ts);
    assert.deepStrictEqual(
      { sig: g.signature, summary: g.summary, start: g.start, end: g.end },
      { sig: 'max(a, b)', summary: 'Returns the larger of two numbers given.', start: 0, end: 10 },
    );
    const c = file('c-cpp', 'c', 'static int twice(const char *s, int n)\n{\n    if (n) { n++; }\n    return 2 * n;\n}\n');
    const [h] = documentedFunctions(c);
    assert.deepStrictEqual({ sig: h.signature, summary: h.summary, start: h.start, end: h.end }, { sig: 'twice(s, n)', summary: '', start: 0, end: 5 });
  });

  it('picks the same positions for a seed, and builds the top-down and mid-file documents', () => {
    const files = loadHoldout();
    const a = pickPositions(files, 10, 3).map((p) => `${p.file.file}:${p.line}`);
    assert.deepStrictEqual(
      pickPositions(files, 10, 3).map((p) => `${p.file.file}:${p.line}`),
      a,
    );
    assert.notDeepStrictEqual(
      pickPositions(files, 10, 4).map((p) => `${p.file.file}:${p.line}`),
      a,
    );
    assert.strictEqual(a.length, 30);
    const p = pickPositions(files, 10, 3).find((x) => x.indent.length > 0 && x.line < x.file.lines.length - 1)!;
    const top = documentAt(p, 'next-line');
    assert.strictEqual(top.doc.lineCount, p.line + 1);
    assert.strictEqual(top.doc.lineAt(p.line), p.indent);
    assert.deepStrictEqual(top.cursor, { line: p.line, character: p.indent.length });
    const mid = documentAt(p, 'fim');
    assert.strictEqual(mid.doc.lineCount, p.file.lines.length);
    assert.strictEqual(mid.doc.lineAt(p.line + 1), p.file.lines[p.line + 1]);
    assert.strictEqual(p.file.lines[p.line], p.indent + p.expected + p.file.lines[p.line].slice(p.indent.length + p.expected.length));
  });
});
