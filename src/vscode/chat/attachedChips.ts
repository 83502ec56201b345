import * as vscode from 'vscode';
import { ContextSnapshot } from '../../core/chat/conversation';
import { ChipView } from '../../core/chat/webviewProtocol';
import { PROPOSAL_SCHEME, targetEditor } from './codeActions';
import { activeFileChip, Chip, fileChip, pickFiles, workspacePath } from './context';
import { chatSettings } from './settings';

// The chips attached to the next question, as the input box shows them: the active file (which
// follows the editor until the user removes it), and the selections, files and problems the user
// added. Sending a question uses them up (`takeSnapshots`). `context.ts` makes the chips.

export class AttachedChips {
  private chips: Chip[] = [];
  /** The user removed the active-file chip: it stays off until they pick it again. */
  private activeFileOff = false;

  /** `push` sends the chips to the view; `log` records files that could not be read. */
  constructor(
    private readonly push: (chips: ChipView[]) => void,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  views(): ChipView[] {
    return this.chips.map(({ id, kind, label, detail }) => ({ id, kind, label, detail }));
  }

  private pushChips(): void {
    this.push(this.views());
  }

  /** Follows the active editor; `push` false updates the chips without telling the view. */
  refreshActiveFile(push = true): void {
    const editor = vscode.window.activeTextEditor;
    const wanted = chatSettings().includeActiveFile && !this.activeFileOff && editor && isSourceDocument(editor.document);
    const i = this.chips.findIndex((c) => c.kind === 'activeFile');
    if (wanted) {
      const chip = activeFileChip(editor);
      if (i >= 0) {
        if (this.chips[i].detail === chip.detail) return;
        this.chips[i] = chip;
      } else {
        this.chips.unshift(chip);
      }
    } else if (i >= 0) {
      // Keep the last active file when focus moved somewhere that is not a text editor.
      if (!editor && !this.activeFileOff && chatSettings().includeActiveFile) return;
      this.chips.splice(i, 1);
    } else {
      return;
    }
    if (push) this.pushChips();
  }

  add(chip: Chip): void {
    // The same selection or file twice is one chip.
    this.chips = this.chips.filter((c) => !(c.kind === chip.kind && c.detail === chip.detail));
    this.chips.push(chip);
    this.pushChips();
  }

  /** Attaches `file` unless it is already there as the active file. */
  addFile(file: vscode.Uri): void {
    if (!this.chips.some((c) => c.kind === 'activeFile' && c.detail?.startsWith(`${workspacePath(file)} (`))) this.add(fileChip(file));
  }

  remove(id: string): void {
    const chip = this.chips.find((c) => c.id === id);
    if (!chip) return;
    if (chip.kind === 'activeFile') this.activeFileOff = true;
    this.chips = this.chips.filter((c) => c.id !== id);
    this.pushChips();
  }

  /** Lets the user pick files (and the active file) to attach; resolves with what was attached, or undefined when cancelled. */
  async pick(): Promise<{ added: boolean } | undefined> {
    const picked = await pickFiles(targetEditor()?.document.uri);
    if (!picked) return undefined;
    if (picked.active) {
      this.activeFileOff = false;
      this.refreshActiveFile(false);
    }
    for (const uri of picked.uris) this.add(fileChip(uri));
    this.pushChips();
    return { added: picked.active || picked.uris.length > 0 };
  }

  /** Reads what the chips carry for the question being sent, and drops the chips it used up. */
  async takeSnapshots(): Promise<ContextSnapshot[]> {
    const out: ContextSnapshot[] = [];
    for (const chip of this.chips) {
      try {
        const s = await chip.snapshot();
        if (s) out.push(s);
      } catch (e) {
        this.log.warn(`chat: could not read ${chip.detail ?? chip.label}: ${(e as Error).message}`);
        void vscode.window.showWarningMessage(`Strata: could not attach ${chip.label} (${(e as Error).message}); the question was sent without it.`);
      }
    }
    // Sent chips are used up, except the active file, which follows the editor.
    this.chips = this.chips.filter((c) => c.kind === 'activeFile');
    this.pushChips();
    return out;
  }
}

function isSourceDocument(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme !== PROPOSAL_SCHEME && ['file', 'untitled', 'vscode-remote', 'vscode-userdata'].includes(doc.uri.scheme);
}
