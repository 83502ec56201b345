import { FimContext, leadingWhitespace } from './fimContext';

// Turns raw model output into what is worth showing as ghost text: never text that duplicates
// what follows the cursor, one line where a line is wanted, and multi-line output only up to the
// end of the block it started in.

export interface PostProcessOptions {
  maxLines: number;
}

/** The fields of FimContext post-processing reads (tests build these directly). */
export type PostProcessContext = Pick<FimContext, 'prompt' | 'lineSuffix' | 'previousLine' | 'nextNonBlankLine' | 'multiLine'>;

export function postProcessCompletion(raw: string, ctx: PostProcessContext, opts: PostProcessOptions): string | undefined {
  let lines = raw.replace(/\r\n?/g, '\n').split('\n');
  if (!ctx.multiLine) lines = lines.slice(0, 1);
  else lines = cutAtBlockEnd(lines, ctx);
  lines = lines.slice(0, Math.max(1, opts.maxLines));
  // Trailing blank lines and whitespace are noise in ghost text.
  while (lines.length > 1 && lines[lines.length - 1].trim() === '') lines.pop();
  lines = lines.map((l) => l.trimEnd());
  let text = lines.join('\n');
  text = trimSuffixOverlap(text, ctx.lineSuffix);
  if (text.trim() === '') return undefined;
  if (repeatsNeighbour(text, ctx)) return undefined;
  return text;
}

/**
 * Multi-line output ends where its block ends: a line indented less than the block's body (or,
 * at a block start, back at the opening line's level), a bracket that closes something the
 * completion did not open (the editor already holds that closer), or a line that re-types the
 * next line of the file.
 */
function cutAtBlockEnd(lines: string[], ctx: PostProcessContext): string[] {
  const promptIndent = leadingWhitespace(ctx.prompt);
  const atBlockStart = ctx.prompt.trim() !== '';
  // On a blank line the body's indentation is where the cursor is; at `if (x) {` it is deeper
  // than the opening line, which is the level that ends the block.
  const openers = atBlockStart ? unclosedOpeners(ctx.prompt) : [];
  const stack: string[] = [...openers];
  const next = ctx.nextNonBlankLine?.trim();
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const blank = l.trim() === '';
    if (i > 0 && !blank) {
      const ind = leadingWhitespace(l);
      if (atBlockStart ? ind <= promptIndent && !CLOSER_LINE.test(l) : ind < promptIndent) break;
      if (next && l.trim() === next && next.length > 1) break;
    }
    const r = scanBrackets(l, stack);
    if (r === 'unopened') {
      // The first line may close what the prompt line opened (`foo(a` → `, b)`).
      if (i > 0) break;
    }
    out.push(l);
    if (i > 0 && atBlockStart && openers.length > 0 && stack.length < openers.length) break;
  }
  return out.length ? out : lines.slice(0, 1);
}

const CLOSER_LINE = /^\s*[}\])]/;
const PAIRS: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

/** Openers left unclosed on a line, in order (string literals and line comments skipped). */
export function unclosedOpeners(line: string): string[] {
  const stack: string[] = [];
  scanBrackets(line, stack);
  return stack;
}

/** Pushes/pops brackets of `line` onto `stack`; 'unopened' when a closer finds no opener. */
function scanBrackets(line: string, stack: string[]): 'ok' | 'unopened' {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = c;
      continue;
    }
    if (c === '/' && line[i + 1] === '/') break;
    if (c === '#' && (i === 0 || line[i - 1] === ' ')) break;
    if (c === '(' || c === '[' || c === '{') stack.push(c);
    else if (c === ')' || c === ']' || c === '}') {
      if (stack.length === 0 || stack[stack.length - 1] !== PAIRS[c]) return 'unopened';
      stack.pop();
    }
  }
  return 'ok';
}

/** The model often re-types what already follows the cursor (a closing paren, a quote); drop it. */
export function trimSuffixOverlap(text: string, lineSuffix: string): string {
  const suffix = lineSuffix.trim();
  if (!suffix) return text;
  const nl = text.indexOf('\n');
  const first = nl < 0 ? text : text.slice(0, nl);
  const rest = nl < 0 ? '' : text.slice(nl);
  const t = first.trimEnd();
  if (t.endsWith(suffix)) return t.slice(0, t.length - suffix.length) + rest;
  // A partial overlap: the completion ends with the start of the suffix (`foo(a` + `)` vs `);`).
  for (let k = Math.min(suffix.length - 1, t.length); k > 0; k--) {
    if (t.endsWith(suffix.slice(0, k)) && /^[\s)\]}>;,'"`]+$/.test(suffix.slice(0, k))) return t.slice(0, t.length - k) + rest;
  }
  return text;
}

/** A suggestion whose line repeats the line above, or the next line of the file, is noise. */
function repeatsNeighbour(text: string, ctx: PostProcessContext): boolean {
  const firstLine = (ctx.prompt + text.split('\n')[0]).trim();
  if (!firstLine) return false;
  if (firstLine === ctx.previousLine.trim()) return true;
  if (ctx.prompt.trim() === '' && firstLine === ctx.nextNonBlankLine?.trim()) return true;
  return false;
}
