import * as vscode from 'vscode';
import { CompletionEngine, CompletionSettings } from '../../core/completion/completionEngine';
import { ChunkKind, chunkAround } from '../../core/completion/extraContext';
import { asCompletionDocument, displayName, linesOf } from './documentAdapter';

// Feeds the extra-context ring from what the user does, and runs the engine's idle work.
// Sources: the region edited last when the user moves far away or switches files; text pasted
// (copied from somewhere: VS Code has no copy event, and reading the clipboard could prompt for
// permission in a browser); a multi-line selection held for a moment; a region scrolled to and
// looked at; files shown beside the active one and open tabs. Every handler that runs per
// keystroke does O(1) work; reading lines for a chunk happens only when a chunk is picked.

const SUPPORTED_SCHEMES = new Set(['file', 'untitled', 'vscode-notebook-cell', 'vscode-remote']);
/** Files whose text should not be copied into prompts for other files. */
const SECRET_FILE = /(^|[\\/])(\.env(\..*)?|.*\.(pem|key|p12|pfx)|id_(rsa|ed25519|ecdsa)|\.npmrc|\.netrc)$/i;
const IDLE_MS = 1000;
const SELECTION_HOLD_MS = 800;
const VIEW_HOLD_MS = 1500;

interface EditState {
  uri: string;
  line: number;
}

export class ContextTracker implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private lastActivity = Date.now();
  private lastEdit?: EditState;
  private idleTimer: NodeJS.Timeout;
  private selectionTimer?: NodeJS.Timeout;
  private viewTimer?: NodeJS.Timeout;
  private idleAbort?: AbortController;
  private idleBusy = false;

  constructor(
    private readonly engine: CompletionEngine,
    private readonly settings: () => CompletionSettings,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((e) => this.onEdit(e)),
      vscode.window.onDidChangeActiveTextEditor((ed) => this.onActiveEditor(ed)),
      vscode.window.onDidChangeVisibleTextEditors((eds) => this.onVisibleEditors(eds)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onSelection(e)),
      vscode.window.onDidChangeTextEditorVisibleRanges((e) => this.onVisibleRanges(e)),
      vscode.workspace.onDidCloseTextDocument((d) => {
        if (this.lastEdit?.uri === d.uri.toString()) this.lastEdit = undefined;
      }),
    );
    this.idleTimer = setInterval(() => void this.onIdleTick(), 500);
    this.idleTimer.unref?.();
    // Open tabs at start: their tops (imports, declarations) are a good first guess.
    setTimeout(() => this.pickOpenTabs(), 2000).unref?.();
  }

  private tracked(doc: vscode.TextDocument): boolean {
    return SUPPORTED_SCHEMES.has(doc.uri.scheme) && !SECRET_FILE.test(doc.uri.path) && doc.lineCount > 0;
  }

  private pick(doc: vscode.TextDocument, start: number, end: number, kind: ChunkKind): void {
    if (!this.tracked(doc)) return;
    // Not the region around the cursor of the active editor: that is in the prompt already.
    const ed = vscode.window.activeTextEditor;
    if (ed && ed.document === doc) {
      const c = ed.selection.active.line;
      const fim = this.engineWindow();
      if (end > c - fim.before && start < c + fim.after) return;
    }
    const lines = linesOf(doc, start, end);
    if (this.engine.extra.pick(displayName(doc.uri), lines, kind)) {
      this.log.trace(`extra context: queued ${kind} ${displayName(doc.uri)}:${start + 1}-${end}`);
    }
  }

  private engineWindow(): { before: number; after: number } {
    const f = this.settings().fim;
    return { before: f.prefixLines, after: f.suffixLines };
  }

  private chunkLines(): number {
    return this.settings().extra.chunkLines;
  }

  private onEdit(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0) return;
    this.lastActivity = Date.now();
    this.idleAbort?.abort();
    if (!this.tracked(e.document)) return;
    const change = e.contentChanges[0];
    const line = change.range.start.line;
    const uri = e.document.uri.toString();
    const chunkLines = this.chunkLines();
    // Pasted text (several lines inserted at once) was copied from somewhere that matters.
    const text = change.text;
    if (text.length > 80 && text.length < 64_000) {
      let nl = 0;
      for (let i = 0; i < text.length && nl < 3; i++) if (text.charCodeAt(i) === 10) nl++;
      if (nl >= 3) this.engine.extra.pick(displayName(e.document.uri), text.split(/\r?\n/).slice(0, chunkLines), 'copy');
    }
    // Moving the edits far away (or to another file) leaves the old region as context.
    const prev = this.lastEdit;
    if (prev && (prev.uri !== uri || Math.abs(prev.line - line) > chunkLines / 2)) {
      const prevDoc = prev.uri === uri ? e.document : vscode.workspace.textDocuments.find((d) => d.uri.toString() === prev.uri);
      if (prevDoc) {
        const r = chunkAround(prevDoc.lineCount, prev.line, chunkLines);
        this.pick(prevDoc, r.start, r.end, 'edit');
      }
    }
    this.lastEdit = { uri, line };
  }

  private onActiveEditor(ed: vscode.TextEditor | undefined): void {
    this.lastActivity = Date.now();
    const prev = this.lastEdit;
    if (prev && ed && ed.document.uri.toString() !== prev.uri) {
      const prevDoc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === prev.uri);
      if (prevDoc) {
        const r = chunkAround(prevDoc.lineCount, prev.line, this.chunkLines());
        this.pick(prevDoc, r.start, r.end, 'edit');
      }
    }
  }

  private onVisibleEditors(eds: readonly vscode.TextEditor[]): void {
    const active = vscode.window.activeTextEditor;
    for (const ed of eds.slice(0, 4)) {
      if (ed === active) continue;
      const r = ed.visibleRanges[0];
      if (r) this.pick(ed.document, r.start.line, Math.min(r.end.line + 1, r.start.line + this.chunkLines()), 'open');
    }
  }

  private onSelection(e: vscode.TextEditorSelectionChangeEvent): void {
    if (this.selectionTimer) clearTimeout(this.selectionTimer);
    const sel = e.selections[0];
    if (!sel || sel.isEmpty || sel.end.line - sel.start.line < 2) return;
    const ed = e.textEditor;
    this.selectionTimer = setTimeout(() => {
      const now = ed.selection;
      if (!now.isEqual(sel)) return;
      this.pick(ed.document, sel.start.line, Math.min(sel.end.line + 1, sel.start.line + this.chunkLines()), 'select');
    }, SELECTION_HOLD_MS);
  }

  private onVisibleRanges(e: vscode.TextEditorVisibleRangesChangeEvent): void {
    if (this.viewTimer) clearTimeout(this.viewTimer);
    const ed = e.textEditor;
    const r = e.visibleRanges[0];
    if (!r) return;
    this.viewTimer = setTimeout(() => {
      const now = ed.visibleRanges[0];
      if (!now || !now.isEqual(r)) return;
      this.pick(ed.document, r.start.line, Math.min(r.end.line + 1, r.start.line + this.chunkLines()), 'view');
    }, VIEW_HOLD_MS);
  }

  private pickOpenTabs(): void {
    const loaded = new Map(vscode.workspace.textDocuments.map((d) => [d.uri.toString(), d]));
    let n = 0;
    for (const group of vscode.window.tabGroups.all) {
      for (const tab of group.tabs) {
        if (n >= 4) return;
        const input = tab.input;
        if (!(input instanceof vscode.TabInputText) || tab.isActive) continue;
        const doc = loaded.get(input.uri.toString());
        if (!doc) continue;
        this.pick(doc, 0, this.chunkLines(), 'tab');
        n++;
      }
    }
  }

  /** When the user pauses: a queued chunk joins the ring, and the server warms its cache. */
  private async onIdleTick(): Promise<void> {
    if (this.idleBusy || Date.now() - this.lastActivity < IDLE_MS) return;
    const ed = vscode.window.activeTextEditor;
    this.idleBusy = true;
    this.idleAbort = new AbortController();
    try {
      const doc = ed && this.tracked(ed.document) ? asCompletionDocument(ed.document) : undefined;
      const cursor = ed ? { line: ed.selection.active.line, character: ed.selection.active.character } : undefined;
      const warmed = await this.engine.idle(doc, cursor, this.idleAbort.signal);
      if (warmed) this.log.debug(`extra context: warmed the server cache (${this.engine.extra.size} chunks)`);
    } catch (e) {
      this.log.debug(`idle work failed: ${(e as Error).message}`);
    } finally {
      this.idleBusy = false;
    }
  }

  /** Marks user activity (a provider call) so idle work waits. */
  touch(): void {
    this.lastActivity = Date.now();
    this.idleAbort?.abort();
  }

  dispose(): void {
    clearInterval(this.idleTimer);
    if (this.selectionTimer) clearTimeout(this.selectionTimer);
    if (this.viewTimer) clearTimeout(this.viewTimer);
    this.idleAbort?.abort();
    for (const d of this.disposables) d.dispose();
  }
}
