// A fast, allocation-free estimate of how many tokens a code model's tokenizer makes of a text.
// It decides how many lines fit the prefix/suffix budgets, on every keystroke, so it must cost
// microseconds (one pass over char codes, no regex). It errs high on purpose: a prompt cut a
// little early is harmless; one the server cuts itself moves the cut point with every new line
// and so defeats the KV cache. Calibration against the Qwen2.5-Coder tokenizer (llama-server
// /tokenize) is in test/integration/completionServer.test.ts.

const WORD_CHARS_PER_TOKEN = 6;

function isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95;
}

function charClass(c: number): number {
  // 0 lower case and '_', 1 upper case, 2 digit.
  return c >= 97 || c === 95 ? 0 : c >= 65 ? 1 : 2;
}

function isPunct(c: number): boolean {
  return c > 32 && c < 127 && !isWordChar(c);
}

/** Measured worst undercount (a package-lock.json) was 12 %; everything else errs higher. */
const SAFETY = 1.12;

export function estimateTokens(text: string, from = 0, to = text.length): number {
  return Math.ceil(rawTokens(text, from, to) * SAFETY);
}

/**
 * Tokens of one line and its line break, as a fraction (sum several, then round). The break and
 * the next line's indentation make about one token together.
 */
export function estimateLineTokens(line: string): number {
  const c = line.charCodeAt(0);
  const indented = c === 32 || c === 9;
  return (rawTokens(line, 0, line.length) + (indented ? 0 : 1)) * SAFETY;
}

function rawTokens(text: string, from: number, to: number): number {
  let n = 0;
  let i = from;
  while (i < to) {
    const c = text.charCodeAt(i);
    if (isWordChar(c)) {
      // Identifiers split into camelCase / snake_case / digit segments, each about a token per
      // 6 characters; random-looking runs (hashes, base64) fall into many short segments.
      let j = i;
      let seg = 0;
      let prev = -1;
      while (j < to) {
        const d = text.charCodeAt(j);
        if (!isWordChar(d)) break;
        const k = charClass(d);
        if (seg > 0 && k !== prev && !(prev === 1 && k === 0)) {
          n += Math.ceil(seg / WORD_CHARS_PER_TOKEN);
          seg = 0;
        }
        seg++;
        prev = k;
        j++;
      }
      n += Math.ceil(seg / WORD_CHARS_PER_TOKEN);
      i = j;
    } else if (c === 32 || c === 9 || c === 10 || c === 13) {
      // A line break with the next line's indentation is about one token; one space before a
      // word rides on the word's token.
      let j = i + 1;
      let breaks = c === 10 ? 1 : 0;
      while (j < to) {
        const d = text.charCodeAt(j);
        if (d === 10) breaks++;
        else if (d !== 32 && d !== 9 && d !== 13) break;
        j++;
      }
      if (breaks > 0 || j - i > 1) n += Math.max(1, breaks) + ((j - i) >> 5);
      i = j;
    } else if (isPunct(c)) {
      // Operator and bracket runs merge in pairs or so ("();", "=>", "::").
      let j = i + 1;
      while (j < to && isPunct(text.charCodeAt(j))) j++;
      n += Math.ceil((j - i) / 2);
      i = j;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      n += 2;
      i += 2;
    } else {
      n += 1;
      i++;
    }
  }
  return n;
}
