import { CompletionDocument, Cursor } from './document';

// Two ways to answer without asking the server:
//  - an LRU of finished answers keyed by a hash of the whole request context (the same context
//    comes back after a backspace, an undo, or moving the cursor away and back);
//  - "typing through": while the user types the first characters of the suggestion on screen,
//    the rest of it is still the answer, so it is served from memory.

export class LruCache<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly limit: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      // Refresh: the Map's insertion order is the eviction order.
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    while (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as string);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}

/** A suggestion as shown: where it starts and what it says. */
export interface ShownSuggestion {
  uri: string;
  /** Position the suggestion was made for. */
  anchor: Cursor;
  /** Cursor line's text before the anchor, when it was made. */
  linePrefix: string;
  /** Cursor line's text after the anchor, when it was made. */
  lineSuffix: string;
  text: string;
}

/** Most suggestions a user can type through at a time (the last few shown). */
const KEEP = 8;

export class TypeThroughCache {
  private readonly shown: ShownSuggestion[] = [];

  remember(s: ShownSuggestion): void {
    const i = this.shown.findIndex((x) => x.uri === s.uri && x.anchor.line === s.anchor.line && x.anchor.character === s.anchor.character);
    if (i >= 0) this.shown.splice(i, 1);
    this.shown.push(s);
    if (this.shown.length > KEEP) this.shown.shift();
  }

  clear(): void {
    this.shown.length = 0;
  }

  /**
   * The rest of a remembered suggestion when the text between its anchor and the cursor is its
   * start. Reads only the lines between the two (at most the suggestion's line count).
   */
  lookup(doc: CompletionDocument, cursor: Cursor): { rest: string; from: ShownSuggestion } | undefined {
    for (let k = this.shown.length - 1; k >= 0; k--) {
      const s = this.shown[k];
      if (s.uri !== doc.uri) continue;
      const rest = restAfterTyping(doc, cursor, s);
      if (rest !== undefined) return { rest, from: s };
    }
    return undefined;
  }
}

function restAfterTyping(doc: CompletionDocument, cursor: Cursor, s: ShownSuggestion): string | undefined {
  const { anchor } = s;
  if (cursor.line < anchor.line || (cursor.line === anchor.line && cursor.character <= anchor.character)) return undefined;
  const spanLines = cursor.line - anchor.line;
  let newlines = 0;
  for (let i = 0; i < s.text.length && newlines <= spanLines; i++) if (s.text.charCodeAt(i) === 10) newlines++;
  if (newlines < spanLines) return undefined;
  const first = doc.lineAt(anchor.line);
  if (!first.startsWith(s.linePrefix) || first.length < anchor.character) return undefined;
  let typed: string;
  if (spanLines === 0) {
    typed = first.slice(anchor.character, cursor.character);
  } else {
    const parts = [first.slice(anchor.character)];
    for (let i = anchor.line + 1; i < cursor.line; i++) parts.push(doc.lineAt(i));
    parts.push(doc.lineAt(cursor.line).slice(0, cursor.character));
    typed = parts.join('\n');
  }
  if (typed.length >= s.text.length || !s.text.startsWith(typed)) return undefined;
  // What followed the cursor must still follow it (nothing else was edited on the line).
  const after = doc.lineAt(cursor.line).slice(cursor.character);
  if (after !== s.lineSuffix) return undefined;
  return s.text.slice(typed.length);
}
