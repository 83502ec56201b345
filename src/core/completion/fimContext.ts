import { CompletionDocument, Cursor } from './document';
import { estimateLineTokens } from './tokenEstimate';

// Cuts the text around the cursor into what /infill takes: `input_prefix` (whole lines above the
// cursor), `prompt` (the cursor line up to the cursor) and `input_suffix` (the rest of the line and
// the lines below). llama-server tokenizes these three separately and puts the extra context
// first, so while the user types on one line only the tail of the prompt changes and everything
// before it stays a KV-cache hit.
//
// The prefix window is measured in lines and tokens. With `stableWindow` its first line is snapped
// to a grid (every `windowStep` lines), so it moves once per 32 new lines instead of on every new
// line; a moving first line changes the very start of the prefix and, without the server's
// --cache-reuse shifting, makes the whole prefix a cache miss. The token budget keeps the prefix
// under llama-server's own cut (3/4 of n_batch, from the front, at a token position that would
// move with every keystroke).
//
// Everything here reads only the lines of the window: cost is independent of the file's size.

export interface FimContextOptions {
  prefixLines: number;
  suffixLines: number;
  /** Estimated-token budget of input_prefix (llama-server keeps at most 3/4 of n_batch). */
  prefixTokens: number;
  /**
   * Estimated-token budget of prompt + input_suffix (llama-server keeps at most n_batch/4 - 2).
   * Everything after the cursor is re-evaluated on every keystroke (it follows the changed
   * tokens), so this is the per-keystroke prefill cost: ~200 real tokens, well under a second
   * at a 32B model's few hundred tokens a second.
   */
  suffixTokens: number;
  /** Lines of the window longer than this are cut (minified code, data). */
  maxLineChars: number;
  /** No completion on a cursor line longer than this: minified or generated text. */
  maxCursorLineChars: number;
  /** Snap the prefix window's first line to a grid of `windowStep` lines. */
  stableWindow: boolean;
  windowStep: number;
}

export const DEFAULT_FIM_OPTIONS: FimContextOptions = {
  prefixLines: 256,
  suffixLines: 64,
  prefixTokens: 1400,
  suffixTokens: 256,
  maxLineChars: 1000,
  maxCursorLineChars: 10_000,
  stableWindow: true,
  windowStep: 32,
};

export interface FimContext {
  /** Whole lines above the cursor, each ending in '\n'. */
  inputPrefix: string;
  /** Cursor line up to the cursor (capped to maxLineChars from the cursor). */
  prompt: string;
  /** Rest of the cursor line, then '\n' and the lines below. */
  inputSuffix: string;
  /** Cursor line after the cursor (capped). */
  lineSuffix: string;
  /** Previous line (for repeat detection). */
  previousLine: string;
  /** Next non-blank line below the cursor, if any within the window. */
  nextNonBlankLine?: string;
  /** Leading whitespace (in characters) of the cursor line, for llama-server's n_indent. */
  indent: number;
  /** Whether a multi-line completion fits here (end of line at a block start or on a blank line). */
  multiLine: boolean;
  prefixStartLine: number;
  suffixEndLine: number;
  /** Estimated tokens of prefix and of prompt+suffix. */
  prefixTokens: number;
  suffixTokens: number;
}

export type FimResult = { ok: true; ctx: FimContext } | { ok: false; reason: string };

// Estimates per line string: a window of ~300 lines is re-read on every keystroke and nearly all
// of its lines are the same strings as last time.
const lineTokenCache = new Map<string, number>();

function lineTokens(line: string): number {
  let n = lineTokenCache.get(line);
  if (n === undefined) {
    n = estimateLineTokens(line);
    if (lineTokenCache.size >= 20_000) lineTokenCache.clear();
    lineTokenCache.set(line, n);
  }
  return n;
}

export function buildFimContext(doc: CompletionDocument, cursor: Cursor, opts: FimContextOptions = DEFAULT_FIM_OPTIONS): FimResult {
  const lineCount = doc.lineCount;
  if (cursor.line < 0 || cursor.line >= lineCount) return { ok: false, reason: 'cursor outside the document' };
  const line = doc.lineAt(cursor.line);
  if (line.length > opts.maxCursorLineChars) {
    return { ok: false, reason: `the line is ${line.length.toLocaleString('en-US')} characters long (minified or generated text)` };
  }
  if (line.indexOf('\0') >= 0) return { ok: false, reason: 'binary content' };
  const col = Math.min(cursor.character, line.length);

  // Prefix: whole lines, walking up from the cursor until the line or token budget is spent.
  let earliest = Math.max(0, cursor.line - opts.prefixLines);
  if (opts.stableWindow && earliest > 0) earliest = Math.floor(earliest / opts.windowStep) * opts.windowStep;
  let tokens = 0;
  let start = cursor.line;
  let binary = 0;
  while (start > earliest) {
    const l = doc.lineAt(start - 1);
    const t = l.length > opts.maxLineChars ? lineTokens(l.slice(0, opts.maxLineChars)) : lineTokens(l);
    if (tokens + t > opts.prefixTokens) break;
    tokens += t;
    start--;
  }
  if (opts.stableWindow && start > earliest && start % opts.windowStep !== 0) {
    // The token budget, not the line count, set the start: snap it forward to the grid too.
    const snapped = Math.ceil(start / opts.windowStep) * opts.windowStep;
    for (let i = start; i < Math.min(snapped, cursor.line); i++) tokens -= lineTokens(capLine(doc.lineAt(i), opts.maxLineChars));
    start = Math.min(snapped, cursor.line);
  }
  const parts: string[] = [];
  for (let i = start; i < cursor.line; i++) {
    const l = capLine(doc.lineAt(i), opts.maxLineChars);
    if (l.indexOf('\0') >= 0) binary++;
    parts.push(l, '\n');
  }
  if (binary > 0) return { ok: false, reason: 'binary content' };
  const inputPrefix = wellFormed(parts.join(''));

  const rawPrompt = line.slice(0, col);
  const prompt = wellFormed(rawPrompt.length > opts.maxLineChars ? sliceEnd(rawPrompt, opts.maxLineChars) : rawPrompt);
  const rawLineSuffix = line.slice(col);
  const lineSuffix = wellFormed(rawLineSuffix.length > opts.maxLineChars ? sliceStart(rawLineSuffix, opts.maxLineChars) : rawLineSuffix);

  // Suffix: the rest of the line, then whole lines down to the line or token budget.
  // The prompt and the line suffix change on every keystroke: not worth caching.
  let suffixTokens = estimateLineTokens(prompt) + estimateLineTokens(lineSuffix);
  const sparts: string[] = [lineSuffix];
  const last = Math.min(lineCount - 1, cursor.line + opts.suffixLines);
  let end = cursor.line;
  let nextNonBlankLine: string | undefined;
  for (let i = cursor.line + 1; i <= last; i++) {
    const l = capLine(doc.lineAt(i), opts.maxLineChars);
    const t = lineTokens(l);
    if (suffixTokens + t > opts.suffixTokens) break;
    if (l.indexOf('\0') >= 0) return { ok: false, reason: 'binary content' };
    if (nextNonBlankLine === undefined && l.trim() !== '') nextNonBlankLine = l;
    suffixTokens += t;
    sparts.push('\n', l);
    end = i;
  }
  const inputSuffix = wellFormed(sparts.join(''));

  const indent = leadingWhitespace(line);
  const before = rawPrompt.trimEnd();
  const multiLine = lineSuffix.trim() === '' && (before.trim() === '' || BLOCK_START.test(before));
  return {
    ok: true,
    ctx: {
      inputPrefix,
      prompt,
      inputSuffix,
      lineSuffix,
      previousLine: cursor.line > 0 ? capLine(doc.lineAt(cursor.line - 1), opts.maxLineChars) : '',
      nextNonBlankLine,
      indent,
      multiLine,
      prefixStartLine: start,
      suffixEndLine: end,
      prefixTokens: Math.ceil(tokens),
      suffixTokens: Math.ceil(suffixTokens),
    },
  };
}

/** Ends of a line that open a block: brackets, Python/YAML colons, arrows, block keywords. */
const BLOCK_START = /(?:[{([:]|=>|->|\b(?:do|then|else|begin))\s*$/;

export function leadingWhitespace(s: string): number {
  let i = 0;
  while (i < s.length && (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9)) i++;
  return i;
}

function capLine(l: string, max: number): string {
  return l.length > max ? sliceStart(l, max) : l;
}

/** First `n` UTF-16 units, never ending inside a surrogate pair. */
export function sliceStart(s: string, n: number): string {
  if (n >= s.length) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}

/** Last `n` UTF-16 units, never starting inside a surrogate pair. */
export function sliceEnd(s: string, n: number): string {
  if (n >= s.length) return s;
  const i = s.length - n;
  const c = s.charCodeAt(i);
  return s.slice(c >= 0xdc00 && c <= 0xdfff ? i + 1 : i);
}

/**
 * Replaces lone surrogates with U+FFFD. JSON.stringify writes them as \udXXX escapes, which
 * llama-server's JSON parser rejects (400 on every keystroke); a document decoded with the wrong
 * encoding can hold them.
 */
export function wellFormed(s: string): string {
  const f = s as unknown as { isWellFormed?: () => boolean; toWellFormed?: () => string };
  if (f.isWellFormed && f.toWellFormed) return f.isWellFormed() ? s : f.toWellFormed();
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}
