// Finds where a streaming Markdown text can be cut into finished blocks, so that each animation
// frame re-renders only the last, unfinished block. Scans each complete line once (O(total) for the
// whole stream). A cut is made:
//  - after a blank line outside a fenced code block,
//  - before the opening line of a fenced code block (a fence may interrupt a paragraph),
//  - after the closing line of a fenced code block.
// While a fence is open, the view appends the code as plain text instead of re-parsing it.

export interface OpenFence {
  /** Offset of the opening line. */
  start: number;
  /** Offset of the first code character (after the opening line's newline). */
  codeStart: number;
  char: '`' | '~';
  len: number;
  lang: string;
}

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})([^\n]*)$/;

export class BlockScanner {
  /** Offset up to which lines were scanned (always at a line start). */
  private scanned = 0;
  /** The last offset where a cut may be made. */
  boundary = 0;
  fence: OpenFence | undefined;

  /** Scans the complete lines of `text` that are new since the last call. */
  scan(text: string): void {
    for (;;) {
      const nl = text.indexOf('\n', this.scanned);
      if (nl < 0) return;
      const lineStart = this.scanned;
      const line = text.slice(lineStart, nl).replace(/\r$/, '');
      this.scanned = nl + 1;
      if (this.fence) {
        const f = this.fence;
        const close = line.match(/^ {0,3}(`{3,}|~{3,})\s*$/);
        if (close && close[1][0] === f.char && close[1].length >= f.len) {
          this.fence = undefined;
          this.boundary = this.scanned;
        }
        continue;
      }
      const open = line.match(FENCE_OPEN);
      if (open && !(open[1][0] === '`' && open[2].includes('`'))) {
        this.boundary = lineStart;
        this.fence = {
          start: lineStart,
          codeStart: this.scanned,
          char: open[1][0] as '`' | '~',
          len: open[1].length,
          lang: open[2].trim().split(/\s+/)[0] ?? '',
        };
        continue;
      }
      if (line.trim() === '') this.boundary = this.scanned;
    }
  }
}
