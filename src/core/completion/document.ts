// What the completion core needs from a document: random access to lines. Never the whole
// text: on a 10,000-line (or 50 MB) file, `getText()` plus `split` per keystroke costs
// milliseconds; reading the ~320 lines of the window costs microseconds.

export interface CompletionDocument {
  /** Stable identity (a URI string). */
  readonly uri: string;
  /** Name sent to the model with extra-context chunks (workspace-relative when known). */
  readonly fileName: string;
  readonly languageId: string;
  /** Changes on every edit (VS Code's TextDocument.version). */
  readonly version: number;
  readonly lineCount: number;
  /** Text of line `i` without its line break; '' outside the document. */
  lineAt(i: number): string;
}

export interface Cursor {
  /** 0-based line. */
  line: number;
  /** 0-based UTF-16 column. */
  character: number;
}

/** A document made from a string (tests, benchmark). CRLF, CR and LF all end a line. */
export class TextDocumentLines implements CompletionDocument {
  private lines: string[];
  version = 1;

  constructor(
    text: string,
    readonly uri = 'untitled:doc',
    readonly languageId = 'plaintext',
    readonly fileName = uri,
  ) {
    this.lines = text.split(/\r\n|\r|\n/);
  }

  get lineCount(): number {
    return this.lines.length;
  }

  lineAt(i: number): string {
    return this.lines[i] ?? '';
  }

  getText(): string {
    return this.lines.join('\n');
  }

  /** Replaces the text between two positions, as an editor would; returns the cursor after the inserted text. */
  replace(start: Cursor, end: Cursor, text: string): Cursor {
    const before = this.lineAt(start.line).slice(0, start.character);
    const after = this.lineAt(end.line).slice(end.character);
    const ins = text.split(/\r\n|\r|\n/);
    const last = ins.length - 1;
    const newLines = ins.map((l, i) => (i === 0 ? before : '') + l + (i === last ? after : ''));
    this.lines.splice(start.line, end.line - start.line + 1, ...newLines);
    this.version++;
    return { line: start.line + last, character: (last === 0 ? before.length : 0) + ins[last].length };
  }

  insert(at: Cursor, text: string): Cursor {
    return this.replace(at, at, text);
  }
}
