import * as vscode from 'vscode';
import { ConversationSummary } from '../../core/chat/conversation';
import { HistoryStore } from '../../core/chat/historyStore';

// The history list: a QuickPick (native, keyboard-first) with rename and delete buttons per item.

interface Item extends vscode.QuickPickItem {
  summary: ConversationSummary;
}

const RENAME: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('edit'), tooltip: 'Rename' };
const DELETE: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('trash'), tooltip: 'Delete' };

function when(ms: number): string {
  const d = new Date(ms);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString();
}

export async function showHistory(store: HistoryStore, currentId: string): Promise<{ open?: string; deleted: string[]; renamed: boolean } | undefined> {
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = 'Strata: Chat History';
  qp.placeholder = 'Pick a conversation to open it';
  qp.matchOnDescription = true;
  const deleted: string[] = [];
  let renamed = false;
  const refresh = async () => {
    const list = await store.list();
    qp.items = list.map((s) => ({
      label: s.title,
      description: `${when(s.updatedAt)}${s.model ? ' · ' + s.model : ''}${s.id === currentId ? ' · open' : ''}`,
      detail: `${Math.ceil(s.turnCount / 2)} question${s.turnCount > 2 ? 's' : ''}`,
      buttons: [RENAME, DELETE],
      summary: s,
    }));
    if (list.length === 0) qp.placeholder = 'No saved conversations yet';
  };
  await refresh();
  return new Promise((resolve) => {
    let result: { open?: string; deleted: string[]; renamed: boolean } | undefined;
    let inDialog = false;
    qp.onDidTriggerItemButton(async (e) => {
      const s = e.item.summary;
      if (e.button === DELETE) {
        await store.delete(s.id);
        deleted.push(s.id);
        await refresh();
      } else if (e.button === RENAME) {
        inDialog = true;
        const title = await vscode.window.showInputBox({
          title: 'Rename conversation',
          value: s.title,
          valueSelection: [0, s.title.length],
          validateInput: (v) => (v.trim() ? undefined : 'A title cannot be empty'),
        });
        inDialog = false;
        if (title?.trim()) {
          await store.rename(s.id, title);
          renamed = true;
        }
        await refresh();
        qp.value = '';
        qp.show();
      }
    });
    qp.onDidAccept(() => {
      const item = qp.selectedItems[0] ?? qp.activeItems[0];
      result = { open: item?.summary.id, deleted, renamed };
      qp.hide();
    });
    qp.onDidHide(() => {
      if (inDialog) return; // the rename box hides the list for a moment
      qp.dispose();
      resolve(result ?? { deleted, renamed });
    });
    qp.show();
  });
}
