// How the simulated user takes a suggestion: Tab when the whole ghost text is what they were
// about to type; with word acceptance on, otherwise Ctrl+Right (VS Code's "accept next word") as
// far as the ghost text's words match. Keystrokes are counted as the user would press them: the
// editor's auto-indent after Enter means accepted indentation saves no keys.

export interface Acceptance {
  /** The text put into the document. */
  text: string;
  /** Keys pressed to accept it (1 for Tab, one per word). */
  keys: number;
  /** 'full': Tab; 'word': part of it, word by word. */
  how: 'full' | 'word';
}

/** Keys a user types for `text` themselves: a line break and its indentation is one Enter. */
export function keysToType(text: string): number {
  return text.replace(/\n[ \t]*/g, '\n').length;
}

// VS Code's default word definition (editor word characters), for "accept next word".
const WORD = /(-?\d*\.\d\w*)|([^`~!@#$%^&*()\-=+[{\]}\\|;:'",.<>/?\s]+)/;

/**
 * Length of what one "accept next word" takes from the start of `text`, as VS Code does: a word
 * at the start; else up to the next word; never past the end of the first run of whitespace.
 */
export function nextWordLength(text: string): number {
  const w = WORD.exec(text);
  let n = w ? (w.index === 0 ? w[0].length : w.index) : text.length;
  const ws = /\s+/.exec(text);
  if (ws && ws.index + ws[0].length < n) n = ws.index + ws[0].length;
  return Math.max(1, n);
}

/**
 * What a user accepts of `shown` when `upcoming` is what they are about to type; undefined when
 * accepting would save no keystroke.
 */
export function acceptFrom(shown: string, upcoming: string, byWord: boolean): Acceptance | undefined {
  if (shown.length >= 2 && upcoming.startsWith(shown)) return keysToType(shown) > 1 ? { text: shown, keys: 1, how: 'full' } : undefined;
  if (!byWord) return undefined;
  let taken = 0;
  let keys = 0;
  while (taken < shown.length) {
    const n = nextWordLength(shown.slice(taken));
    if (!upcoming.startsWith(shown.slice(0, taken + n))) break;
    taken += n;
    keys++;
  }
  const text = shown.slice(0, taken);
  return keysToType(text) > keys ? { text, keys, how: 'word' } : undefined;
}
