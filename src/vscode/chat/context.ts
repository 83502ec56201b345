import * as path from 'path';
import * as vscode from 'vscode';
import { ContextSnapshot } from '../../core/chat/conversation';
import { ChipView } from '../../core/chat/webviewProtocol';

// Context chips: what the next question carries. Selections and problems are captured when the
// chip is made (they describe a moment); files are read when the question is sent (their latest
// text, unsaved edits included).

/** Files larger than this are cut before counting tokens (the budget cuts further). */
export const MAX_CONTEXT_CHARS = 256 * 1024;

export interface Chip extends ChipView {
  snapshot(): Promise<ContextSnapshot | undefined>;
}

let chipCounter = 0;
const nextId = (kind: string) => `${kind}-${++chipCounter}`;

export function workspacePath(uri: vscode.Uri): string {
  return uri.scheme === 'file' || uri.scheme === 'vscode-remote' ? vscode.workspace.asRelativePath(uri, false) : uri.toString(true);
}

const baseName = (uri: vscode.Uri) => path.posix.basename(uri.path) || uri.toString(true);

function rangeOf(r: vscode.Range): NonNullable<ContextSnapshot['range']> {
  return { startLine: r.start.line, startCharacter: r.start.character, endLine: r.end.line, endCharacter: r.end.character };
}

function capped(text: string): string {
  return text.length > MAX_CONTEXT_CHARS ? text.slice(0, MAX_CONTEXT_CHARS) : text;
}

/** The selection (whole lines, so that a replacement fits) as a chip; undefined when nothing is selected. */
export function selectionChip(editor: vscode.TextEditor, range?: vscode.Range): Chip | undefined {
  const doc = editor.document;
  let r = range ?? editor.selection;
  if (r.isEmpty) return undefined;
  // Whole lines: an answer replaces lines, and half a line makes poor context.
  const endLine = r.end.character === 0 && r.end.line > r.start.line ? r.end.line - 1 : r.end.line;
  r = new vscode.Range(r.start.line, 0, endLine, doc.lineAt(endLine).text.length);
  const snap: ContextSnapshot = {
    kind: 'selection',
    label: `${baseName(doc.uri)}:${r.start.line + 1}-${r.end.line + 1}`,
    path: workspacePath(doc.uri),
    uri: doc.uri.toString(),
    languageId: doc.languageId,
    range: rangeOf(r),
    documentVersion: doc.version,
    focusLine: 0,
    text: capped(doc.getText(r)),
  };
  return {
    id: nextId('selection'),
    kind: 'selection',
    label: snap.label,
    detail: `${snap.path}, lines ${r.start.line + 1}-${r.end.line + 1}`,
    snapshot: async () => snap,
  };
}

async function readDocumentText(uri: vscode.Uri): Promise<{ text: string; languageId?: string; version?: number } | undefined> {
  const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (open) return { text: open.getText(), languageId: open.languageId, version: open.version };
  const bytes = await vscode.workspace.fs.readFile(uri);
  const head = bytes.subarray(0, 8000);
  if (head.includes(0)) return undefined; // binary
  return { text: new TextDecoder('utf-8').decode(bytes.subarray(0, MAX_CONTEXT_CHARS * 4)) };
}

export function fileChip(uri: vscode.Uri): Chip {
  const label = baseName(uri);
  return {
    id: nextId('file'),
    kind: 'file',
    label,
    detail: workspacePath(uri),
    snapshot: async () => {
      const doc = await readDocumentText(uri);
      if (!doc) return undefined;
      return {
        kind: 'file',
        label,
        path: workspacePath(uri),
        uri: uri.toString(),
        languageId: doc.languageId,
        documentVersion: doc.version,
        text: capped(doc.text),
      };
    },
  };
}

/** The file in the active editor, read at send time, kept around the cursor when it must be cut. */
export function activeFileChip(editor: vscode.TextEditor): Chip {
  const uri = editor.document.uri;
  const label = baseName(uri);
  return {
    id: 'active-file',
    kind: 'activeFile',
    label,
    detail: `${workspacePath(uri)} (the active editor; remove to stop attaching it)`,
    snapshot: async () => {
      const doc = editor.document;
      if (doc.isClosed) return undefined;
      return {
        kind: 'activeFile',
        label,
        path: workspacePath(uri),
        uri: uri.toString(),
        languageId: doc.languageId,
        documentVersion: doc.version,
        focusLine: editor.selection.active.line,
        text: capped(doc.getText()),
      };
    },
  };
}

const SEVERITY = ['error', 'warning', 'info', 'hint'];

/** Problems at the cursor (or in the selection) of `editor`; undefined when there are none. */
export function diagnosticsAt(editor: vscode.TextEditor): vscode.Diagnostic[] {
  const all = vscode.languages.getDiagnostics(editor.document.uri);
  const sel = editor.selection;
  const hit = all.filter((d) =>
    sel.isEmpty ? d.range.contains(sel.active) || d.range.start.line === sel.active.line : d.range.intersection(sel) !== undefined,
  );
  return hit.sort((a, b) => a.severity - b.severity);
}

export function diagnosticsChip(editor: vscode.TextEditor, diags: vscode.Diagnostic[]): Chip {
  const doc = editor.document;
  const lines = diags.map((d) => {
    const code = typeof d.code === 'object' ? d.code.value : d.code;
    const src = d.source ? ` [${d.source}${code !== undefined ? ' ' + code : ''}]` : '';
    return `- ${SEVERITY[d.severity] ?? 'problem'} at line ${d.range.start.line + 1}, column ${d.range.start.character + 1}: ${d.message}${src}\n  ${doc.lineAt(d.range.start.line).text.trim()}`;
  });
  const first = diags[0].range.start.line + 1;
  const label = `${diags.length} problem${diags.length > 1 ? 's' : ''} at ${baseName(doc.uri)}:${first}`;
  const snap: ContextSnapshot = { kind: 'diagnostics', label, path: workspacePath(doc.uri), uri: doc.uri.toString(), text: lines.join('\n') };
  return { id: nextId('diagnostics'), kind: 'diagnostics', label, detail: diags.map((d) => d.message).join('\n'), snapshot: async () => snap };
}

/** Lines around the problems, as the range an answer should replace. */
export function rangeAroundDiagnostics(doc: vscode.TextDocument, diags: vscode.Diagnostic[], margin = 8): vscode.Range {
  const start = Math.max(0, Math.min(...diags.map((d) => d.range.start.line)) - margin);
  const end = Math.min(doc.lineCount - 1, Math.max(...diags.map((d) => d.range.end.line)) + margin);
  return new vscode.Range(start, 0, end, doc.lineAt(end).text.length);
}

interface FileItem extends vscode.QuickPickItem {
  uri?: vscode.Uri;
  active?: boolean;
}

/** The `@` picker: open editors first, then workspace files, filtered as the user types. */
export async function pickFiles(activeUri: vscode.Uri | undefined): Promise<{ uris: vscode.Uri[]; active: boolean } | undefined> {
  const qp = vscode.window.createQuickPick<FileItem>();
  qp.title = 'Attach files to the chat';
  qp.placeholder = 'Type to find a file; Space or click to select several, Enter to attach';
  qp.canSelectMany = true;
  qp.matchOnDescription = true;
  const seen = new Set<string>();
  const items: FileItem[] = [];
  if (activeUri) {
    items.push({ label: `$(go-to-file) ${baseName(activeUri)}`, description: 'active editor (follows the editor)', active: true, alwaysShow: true });
  }
  const openDocs = vscode.window.tabGroups.all
    .flatMap((g) => g.tabs)
    .map((t) => (t.input instanceof vscode.TabInputText ? t.input.uri : undefined))
    .filter((u): u is vscode.Uri => !!u);
  const push = (uri: vscode.Uri, description: string) => {
    const key = uri.toString();
    if (seen.has(key)) return;
    seen.add(key);
    items.push({ label: `$(file) ${baseName(uri)}`, description: `${workspacePath(uri)}${description ? ' · ' + description : ''}`, uri });
  };
  for (const u of openDocs) push(u, 'open');
  qp.items = items;
  qp.busy = true;
  qp.show();
  void vscode.workspace.findFiles('**/*', '**/{node_modules,.git,dist,out,build,target,.venv,__pycache__}/**', 5000).then(
    (found) => {
      found.sort((a, b) => a.path.localeCompare(b.path));
      for (const u of found) push(u, '');
      qp.items = items;
      qp.busy = false;
    },
    () => {
      qp.busy = false;
    },
  );
  return new Promise((resolve) => {
    let done = false;
    qp.onDidAccept(() => {
      const picked = qp.selectedItems.length ? qp.selectedItems : qp.activeItems;
      done = true;
      resolve({ uris: picked.filter((i) => i.uri).map((i) => i.uri!), active: picked.some((i) => i.active) });
      qp.hide();
    });
    qp.onDidHide(() => {
      if (!done) resolve(undefined);
      qp.dispose();
    });
  });
}
