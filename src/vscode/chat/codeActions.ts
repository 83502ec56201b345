import * as path from 'path';
import * as vscode from 'vscode';
import { registerCommands } from '../commands';
import { ContextSnapshot } from '../../core/chat/conversation';
import { CodeAction } from '../../core/chat/webviewProtocol';

// What a code block in an answer can do in the editor: insert at the cursor, be applied to a file
// as a diff the user reviews and accepts or rejects, or become a new file. Nothing is written to
// a file without the user seeing it first.

export const PROPOSAL_SCHEME = 'strata-proposal';

interface Proposal {
  id: string;
  target: vscode.Uri;
  versionAtProposal: number;
  proposed: string;
  proposalUri: vscode.Uri;
  description: string;
}

export class ProposalManager implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly proposals = new Map<string, Proposal>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private counter = 0;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(PROPOSAL_SCHEME, this),
      this.changed,
      ...registerCommands('chatProposals', {
        'strata.chat.acceptProposal': (uri?: vscode.Uri) => this.accept(this.find(uri)),
        'strata.chat.rejectProposal': (uri?: vscode.Uri) => this.reject(this.find(uri)),
      }),
    );
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.proposals.get(new URLSearchParams(uri.query).get('id') ?? '')?.proposed ?? '';
  }

  /** The proposal of `uri`, or of the active diff editor, or the newest one. */
  private find(uri?: vscode.Uri): Proposal | undefined {
    const fromUri = (u?: vscode.Uri) => (u?.scheme === PROPOSAL_SCHEME ? this.proposals.get(new URLSearchParams(u.query).get('id') ?? '') : undefined);
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    const active = tab?.input instanceof vscode.TabInputTextDiff ? tab.input.modified : undefined;
    return fromUri(uri) ?? fromUri(active) ?? fromUri(vscode.window.activeTextEditor?.document.uri) ?? [...this.proposals.values()].pop();
  }

  get pending(): number {
    return this.proposals.size;
  }

  /**
   * Opens a diff of `target` against `target` with `range` (or all of it) replaced by `code`,
   * and asks the user to accept or reject it. Resolves with the user's decision.
   */
  async propose(doc: vscode.TextDocument, range: vscode.Range | undefined, code: string): Promise<'accepted' | 'rejected' | 'dismissed'> {
    const id = String(++this.counter);
    const original = doc.getText();
    let proposed: string;
    let description: string;
    if (range) {
      const eol = doc.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n';
      proposed = original.slice(0, doc.offsetAt(range.start)) + code.replace(/\r?\n/g, eol) + original.slice(doc.offsetAt(range.end));
      description = `lines ${range.start.line + 1}-${range.end.line + 1}`;
    } else {
      proposed = code;
      if (original.endsWith('\n') && !proposed.endsWith('\n')) proposed += '\n';
      description = 'whole file';
    }
    const name = path.posix.basename(doc.uri.path);
    const proposalUri = vscode.Uri.from({ scheme: PROPOSAL_SCHEME, path: '/' + name, query: `id=${id}` });
    const p: Proposal = { id, target: doc.uri, versionAtProposal: doc.version, proposed, proposalUri, description };
    this.proposals.set(id, p);
    await vscode.commands.executeCommand('vscode.diff', doc.uri, proposalUri, `${name} ↔ Strata's change (${description})`, { preview: true });
    const choice = await vscode.window.showInformationMessage(`Apply Strata's change to ${name} (${description})?`, 'Accept', 'Reject');
    if (!this.proposals.has(id)) return 'dismissed'; // decided through the editor title buttons meanwhile
    if (choice === 'Accept') return (await this.accept(p)) ? 'accepted' : 'dismissed';
    if (choice === 'Reject') {
      await this.reject(p);
      return 'rejected';
    }
    return 'dismissed'; // notification closed: the diff stays open with its title buttons
  }

  async accept(p: Proposal | undefined): Promise<boolean> {
    if (!p || !this.proposals.has(p.id)) return false;
    const doc = await vscode.workspace.openTextDocument(p.target);
    if (doc.version !== p.versionAtProposal) {
      await this.close(p);
      void vscode.window.showWarningMessage(
        `${path.posix.basename(p.target.path)} changed after Strata proposed its edit: apply the code block again to see a fresh diff.`,
      );
      return false;
    }
    const edit = new vscode.WorkspaceEdit();
    edit.replace(p.target, new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length)), p.proposed);
    const ok = await vscode.workspace.applyEdit(edit);
    await this.close(p);
    if (ok) {
      this.log.info(`chat: applied a change to ${p.target.toString(true)} (${p.description})`);
      await vscode.window.showTextDocument(doc, { preview: false });
    } else {
      void vscode.window.showErrorMessage(`Strata could not apply the change to ${path.posix.basename(p.target.path)}: the file may be read-only.`);
    }
    return ok;
  }

  async reject(p: Proposal | undefined): Promise<void> {
    if (!p) return;
    await this.close(p);
  }

  private async close(p: Proposal): Promise<void> {
    this.proposals.delete(p.id);
    const tabs = vscode.window.tabGroups.all
      .flatMap((g) => g.tabs)
      .filter((t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.toString() === p.proposalUri.toString());
    if (tabs.length) await vscode.window.tabGroups.close(tabs);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** The editor an action targets: the active text editor, or the most recently visible one. */
export function targetEditor(): vscode.TextEditor | undefined {
  const e = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors.find((v) => v.document.uri.scheme !== PROPOSAL_SCHEME);
  return e && e.document.uri.scheme !== PROPOSAL_SCHEME ? e : undefined;
}

/**
 * Where an applied block goes in `doc`: the selection the question was about when it still
 * stands (same document version), else the editor's non-empty selection, else the whole file.
 */
export function applyRange(editor: vscode.TextEditor, askedAbout: ContextSnapshot[]): vscode.Range | undefined {
  const doc = editor.document;
  const snap = [...askedAbout].reverse().find((c) => c.kind === 'selection' && c.uri === doc.uri.toString() && c.range);
  if (snap?.range && snap.documentVersion === doc.version) {
    const r = snap.range;
    return new vscode.Range(r.startLine, r.startCharacter, r.endLine, r.endCharacter);
  }
  if (!editor.selection.isEmpty) {
    const s = editor.selection;
    const endLine = s.end.character === 0 && s.end.line > s.start.line ? s.end.line - 1 : s.end.line;
    return new vscode.Range(s.start.line, 0, endLine, doc.lineAt(endLine).text.length);
  }
  return undefined;
}

export async function insertAtCursor(code: string): Promise<boolean> {
  const editor = targetEditor();
  if (!editor) {
    void vscode.window.showWarningMessage('Strata: open a file and place the cursor where the code should go, then use Insert again.');
    return false;
  }
  await vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
  return editor.edit((b) => {
    for (const sel of editor.selections) b.replace(sel, code);
  });
}

const EXTENSIONS: Record<string, string> = {
  typescript: 'ts',
  ts: 'ts',
  tsx: 'tsx',
  javascript: 'js',
  js: 'js',
  jsx: 'jsx',
  python: 'py',
  py: 'py',
  rust: 'rs',
  rs: 'rs',
  go: 'go',
  java: 'java',
  c: 'c',
  cpp: 'cpp',
  'c++': 'cpp',
  csharp: 'cs',
  cs: 'cs',
  json: 'json',
  yaml: 'yaml',
  yml: 'yaml',
  bash: 'sh',
  sh: 'sh',
  shell: 'sh',
  html: 'html',
  css: 'css',
  scss: 'scss',
  markdown: 'md',
  md: 'md',
  sql: 'sql',
  ruby: 'rb',
  php: 'php',
  swift: 'swift',
  kotlin: 'kt',
  lua: 'lua',
  toml: 'toml',
  xml: 'xml',
  dockerfile: 'Dockerfile',
  makefile: 'Makefile',
};

export async function saveAsNewFile(code: string, lang: string): Promise<vscode.Uri | undefined> {
  const ext = EXTENSIONS[lang.toLowerCase()] ?? 'txt';
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const name = ext === 'Dockerfile' || ext === 'Makefile' ? ext : `untitled.${ext}`;
  const target = await vscode.window.showSaveDialog({ defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined, title: 'Save the code block as' });
  if (!target) return undefined;
  await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(code.endsWith('\n') ? code : code + '\n'));
  await vscode.window.showTextDocument(target, { preview: false });
  return target;
}

/** Runs a code block's button (copy, insert, apply, save); `askedAbout` is what the question carried, where Apply puts the code. */
export async function runCodeAction(action: CodeAction, code: string, lang: string, proposals: ProposalManager, askedAbout: ContextSnapshot[]): Promise<void> {
  switch (action) {
    case 'copy':
      await vscode.env.clipboard.writeText(code);
      break;
    case 'insert':
      await insertAtCursor(code);
      break;
    case 'save':
      await saveAsNewFile(code, lang);
      break;
    case 'apply': {
      const editor = targetEditor();
      if (!editor) {
        const choice = await vscode.window.showWarningMessage(
          'Strata: open the file the code should go into, then use Apply again, or save the code as a new file.',
          'Save as New File',
        );
        if (choice) await saveAsNewFile(code, lang);
        return;
      }
      await proposals.propose(editor.document, applyRange(editor, askedAbout), code);
      break;
    }
  }
}
