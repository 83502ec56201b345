import { HoldoutFile } from './holdout';

// Functions of the held-out files, for the chat questions: Python `def`s with a docstring, and
// braced functions (JavaScript, TypeScript, C, C++), with their doc comment where they have one;
// 3 to 40 lines long. A summary is the doc's first paragraph when it says something (20
// characters or more). Close to the shapes scripts/model/chat_examples.py derives its instructions
// from, found by cheap scanning instead of a parser.

export interface DocumentedFunction {
  file: HoldoutFile;
  name: string;
  /** `name(arg, …)` as a question would write it. */
  signature: string;
  /** First paragraph of the doc, on one line; '' for an undocumented braced function. */
  summary: string;
  /** 0-based lines [start, end) of the whole definition, its doc comment included. */
  start: number;
  end: number;
}

const MIN_SUMMARY = 20;
const MAX_LINES = 40;

function firstParagraph(doc: string): string {
  return doc
    .trim()
    .split(/\n\s*\n/)[0]
    .split(/\s+/)
    .join(' ');
}

function indentOf(l: string): number {
  return /^[ \t]*/.exec(l)![0].length;
}

/** Names of the plain parameters of a Python parameter list (up to a bare `*` or `*args`). */
function pythonArgs(params: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  const parts: string[] = [];
  for (const c of params) {
    if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  for (const p of parts.map((x) => x.trim()).filter(Boolean)) {
    if (p.startsWith('*')) break;
    if (p === '/') continue;
    const m = /^(\w+)/.exec(p);
    if (m) out.push(m[1]);
  }
  return out;
}

function pythonFunctions(f: HoldoutFile): DocumentedFunction[] {
  const out: DocumentedFunction[] = [];
  const L = f.lines;
  for (let i = 0; i < L.length; i++) {
    const m = /^([ \t]*)(?:async\s+)?def\s+(\w+)\s*\(/.exec(L[i]);
    if (!m) continue;
    // The signature may span lines: up to the line ending in ':'.
    let j = i;
    let sig = L[i];
    while (!/\)\s*(->[^:]*)?:\s*(#.*)?$/.test(sig) && j < i + 8 && j + 1 < L.length) sig += ' ' + L[++j].trim();
    const open = sig.indexOf('(');
    const close = sig.search(/\)\s*(->[^:]*)?:\s*(#.*)?$/);
    if (close < 0) continue;
    const d = /^\s*[rRuU]?("""|''')(.*)$/.exec(L[j + 1] ?? '');
    if (!d) continue;
    let doc = d[2];
    let k = j + 1;
    if (!doc.includes(d[1])) {
      while (++k < L.length && !L[k].includes(d[1])) doc += '\n' + L[k];
      if (k < L.length) doc += '\n' + L[k].slice(0, L[k].indexOf(d[1]));
    } else doc = doc.slice(0, doc.indexOf(d[1]));
    let end = k + 1;
    while (end < L.length && (L[end].trim() === '' || indentOf(L[end]) > m[1].length)) end++;
    while (end > k + 1 && L[end - 1].trim() === '') end--;
    const summary = firstParagraph(doc);
    if (m[2].startsWith('__') || summary.length < MIN_SUMMARY || end - i < 3 || end - i > MAX_LINES || end <= k + 1) continue;
    out.push({ file: f, name: m[2], signature: `${m[2]}(${pythonArgs(sig.slice(open + 1, close)).join(', ')})`, summary, start: i, end });
  }
  return out;
}

const NOT_NAMES = new Set([
  'if',
  'for',
  'while',
  'switch',
  'catch',
  'return',
  'function',
  'sizeof',
  'defined',
  'elif',
  'else',
  'constexpr',
  'static_assert',
  'assert',
  'decltype',
  'alignof',
]);
const HEADER = /^\s*(?!\}|#|\/\/|\*|:|,)[^{;=]*?\b([A-Za-z_]\w*)\s*\(([^;{]*)\)[^;{=]*(\{)?\s*$/;

/** The doc comment ending right above line `i` (a block comment or a run of // lines), or ''. */
function docAbove(L: string[], i: number): { doc: string; start: number } {
  let k = i - 1;
  while (k >= 0 && /^\s*template\s*</.test(L[k])) k--;
  if (k < 0) return { doc: '', start: i };
  if (/\*\/\s*$/.test(L[k])) {
    let s = k;
    while (s > 0 && !L[s].includes('/*')) s--;
    const doc = L.slice(s, k + 1)
      .join('\n')
      .replace(/^\s*\/\*+!?|\*+\/\s*$/g, '')
      .replace(/^\s*\* ?/gm, '')
      .split(/[@\\](?:param|return|brief\b)/)[0];
    return { doc: doc.replace(/^\s*[@\\]brief\s*/, ''), start: s };
  }
  let s = k + 1;
  while (s > 0 && /^\s*\/\//.test(L[s - 1])) s--;
  return {
    doc: L.slice(s, k + 1)
      .map((l) => l.replace(/^\s*\/\/+!?\s?/, ''))
      .join('\n'),
    start: s,
  };
}

/**
 * Braced functions: a header line with `name(params)` ending in `{` (or followed by a lone `{`),
 * with its doc comment when it has one (C and C++ files often have none: then the summary is '').
 */
function bracedFunctions(f: HoldoutFile): DocumentedFunction[] {
  const out: DocumentedFunction[] = [];
  const L = f.lines;
  for (let c = 0; c < L.length; c++) {
    const m = HEADER.exec(L[c]);
    if (!m || NOT_NAMES.has(m[1])) continue;
    const braceLine = m[3] ? c : /^\s*\{\s*$/.test(L[c + 1] ?? '') ? c + 1 : -1;
    if (braceLine < 0) continue;
    let depth = 0;
    let end = braceLine;
    for (; end < L.length; end++) {
      for (const ch of stripLiterals(L[end])) depth += ch === '{' ? 1 : ch === '}' ? -1 : 0;
      if (depth <= 0) break;
    }
    if (depth !== 0 || end - c < 2 || end - c > MAX_LINES) continue;
    const { doc, start } = docAbove(L, c);
    const summary = firstParagraph(doc);
    const args = m[2]
      .split(',')
      .map((a) => paramName(a, f.group === 'js-ts'))
      .filter((a) => a && a !== 'void');
    out.push({ file: f, name: m[1], signature: `${m[1]}(${args.join(', ')})`, summary: summary.length >= MIN_SUMMARY ? summary : '', start, end: end + 1 });
    c = end;
  }
  return out;
}

/** A parameter's name: defaults, TypeScript types, C array brackets cut, then the last word. */
function paramName(param: string, typescript: boolean): string | undefined {
  let p = param.replace(/=.*$/, '').replace(/\[[^\]]*\]/g, '');
  if (typescript) p = p.replace(/\??\s*:.*$/, '');
  return /(\w+)\W*$/.exec(p.trim())?.[1];
}

/** A line without its string literals and line comment (brackets inside them do not count). */
function stripLiterals(line: string): string {
  return line.replace(/"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`(?:\\.|[^`\\])*`/g, '""').replace(/\/\/.*$/, '');
}

export function documentedFunctions(f: HoldoutFile): DocumentedFunction[] {
  return f.group === 'python' ? pythonFunctions(f) : bracedFunctions(f);
}
