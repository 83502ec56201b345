import { FimContext } from './fimContext';

// Turns the raw model output into what is worth showing as ghost text.

export interface PostProcessOptions {
  maxLines: number;
}

export function postProcessCompletion(raw: string, ctx: FimContext, opts: PostProcessOptions): string | undefined {
  let text = raw.replace(/\r\n/g, '\n');
  // Mid-line (text after the cursor), a multi-line insertion would break the line: one line only.
  const midLine = ctx.lineSuffix.trim().length > 0;
  let lines = text.split('\n');
  if (midLine) lines = lines.slice(0, 1);
  lines = lines.slice(0, opts.maxLines);
  // Trailing blank lines are noise in ghost text.
  while (lines.length > 1 && lines[lines.length - 1].trim() === '') lines.pop();
  text = lines.join('\n');
  text = trimSuffixOverlap(text, ctx.lineSuffix);
  if (text.trim() === '') return undefined;
  if (isRepeatOfPreviousLine(text, ctx.prefix)) return undefined;
  return text;
}

/** The model often re-types what already follows the cursor (e.g. a closing paren); drop it. */
export function trimSuffixOverlap(text: string, lineSuffix: string): string {
  const suffix = lineSuffix.trimEnd();
  if (!suffix) return text;
  const firstLineEnd = text.indexOf('\n');
  const first = firstLineEnd < 0 ? text : text.slice(0, firstLineEnd);
  const rest = firstLineEnd < 0 ? '' : text.slice(firstLineEnd);
  if (first.trimEnd().endsWith(suffix)) {
    return first.trimEnd().slice(0, first.trimEnd().length - suffix.length) + rest;
  }
  return text;
}

function isRepeatOfPreviousLine(text: string, prefix: string): boolean {
  const lines = prefix.split('\n');
  if (lines.length < 2) return false;
  const prev = lines[lines.length - 2].trim();
  const cur = lines[lines.length - 1] + text.split('\n')[0];
  return prev.length > 0 && cur.trim() === prev;
}
