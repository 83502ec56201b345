// Cuts the text around the cursor into the prefix/suffix that /infill takes. Windows are
// measured in lines (as llama.vscode does) so that the prefix start stays put while the user
// types on one line: a stable prefix start keeps the server's KV cache reusable.

export interface DocumentSnapshot {
  fileName: string;
  languageId: string;
  /** Full text. */
  text: string;
  /** Cursor as 0-based line and UTF-16 column. */
  line: number;
  character: number;
}

export interface FimContextOptions {
  prefixLines: number;
  suffixLines: number;
  /** Hard cap on characters per side, for pathological (minified) lines. */
  maxChars: number;
}

export interface FimContext {
  /** Text of prefix lines plus the current line up to the cursor. */
  prefix: string;
  /** Rest of the current line plus suffix lines. */
  suffix: string;
  /** Current line up to the cursor. */
  linePrefix: string;
  /** Current line after the cursor. */
  lineSuffix: string;
}

export const DEFAULT_FIM_OPTIONS: FimContextOptions = { prefixLines: 256, suffixLines: 64, maxChars: 16_000 };

export function buildFimContext(doc: DocumentSnapshot, opts: FimContextOptions = DEFAULT_FIM_OPTIONS): FimContext {
  const lines = doc.text.split('\n');
  const lineText = lines[doc.line] ?? '';
  const linePrefix = lineText.slice(0, doc.character);
  const lineSuffix = lineText.slice(doc.character);
  const start = Math.max(0, doc.line - opts.prefixLines);
  const end = Math.min(lines.length, doc.line + 1 + opts.suffixLines);
  let prefix = lines.slice(start, doc.line).map((l) => l + '\n').join('') + linePrefix;
  let suffix = lineSuffix + lines.slice(doc.line + 1, end).map((l) => '\n' + l).join('');
  // Keep the characters nearest the cursor when a side is too long.
  if (prefix.length > opts.maxChars) prefix = prefix.slice(prefix.length - opts.maxChars);
  if (suffix.length > opts.maxChars) suffix = suffix.slice(0, opts.maxChars);
  return { prefix, suffix, linePrefix, lineSuffix };
}
