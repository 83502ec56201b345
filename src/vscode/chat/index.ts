import * as path from 'path';
import * as vscode from 'vscode';
import { registerCommands } from '../commands';
import { HistoryStore } from '../../core/chat/historyStore';
import { ServerConnectionSource } from '../serverConnectionSource';
import { ChatController } from './chatController';
import { ChatServer } from './chatServer';
import { CHAT_VIEW_ID, ChatViewProvider } from './chatViewProvider';
import { ProposalManager, targetEditor } from './codeActions';
import { activeFileChip, diagnosticsAt, diagnosticsChip, rangeAroundDiagnostics, selectionChip } from './context';
import { showHistory } from './history';
import { registerLanguageModelProvider } from './lmProvider';

// Entry point of the chat feature: the Strata activity-bar view, its commands, history and the
// optional VS Code language model provider. The extension's activate() calls registerChat once.

export interface ChatDeps {
  source: ServerConnectionSource;
  log: vscode.LogOutputChannel;
}

/** What other features use of the chat. */
export interface ChatApi {
  /** Opens the chat with `question` in its input and `file` attached; the user sends it. */
  ask(question: string, file?: vscode.Uri): Promise<void>;
}

export function registerChat(context: vscode.ExtensionContext, deps: ChatDeps): ChatApi {
  const { source, log } = deps;
  // Per workspace (like VS Code's own chat); STRATA_CHAT_HISTORY_DIR moves it (tests, unusual setups).
  const historyDir = process.env.STRATA_CHAT_HISTORY_DIR || vscode.Uri.joinPath(context.storageUri ?? context.globalStorageUri, 'chat-history').fsPath;
  const store = new HistoryStore(historyDir);
  const proposals = new ProposalManager(log);
  const server = new ChatServer(source, log);
  const controller = new ChatController(server, log, store, proposals, context.workspaceState);
  const provider = new ChatViewProvider(context.extensionUri, controller, log);
  void controller.restore().catch((e: Error) => log.warn(`chat: could not restore the last conversation: ${e.message}`));

  const withEditor = async (what: string, fn: (editor: vscode.TextEditor) => Promise<unknown>) => {
    const editor = targetEditor();
    if (!editor) {
      void vscode.window.showInformationMessage(`Strata: open a file (and select code) to ${what}.`);
      return undefined;
    }
    return fn(editor);
  };

  context.subscriptions.push(
    server,
    proposals,
    controller,
    vscode.window.registerWebviewViewProvider(CHAT_VIEW_ID, provider, { webviewOptions: { retainContextWhenHidden: false } }),

    ...registerCommands('chat', {
      'strata.chat.open': () => provider.reveal(true),

      'strata.chat.newChat': async () => {
        await controller.newChat();
        await provider.reveal(true);
        return controller.conversation.id;
      },

      'strata.chat.askAboutSelection': () =>
        withEditor('ask about it', async (editor) => {
          const chip = selectionChip(editor);
          if (chip) controller.addChip(chip);
          await provider.reveal(true);
        }),

      'strata.chat.explain': () =>
        withEditor('explain code', async (editor) => {
          const chip = selectionChip(editor);
          await provider.reveal(false);
          if (chip) {
            const snap = await chip.snapshot();
            return controller.send('Explain what this code does, how it works, and anything surprising in it.', { context: snap ? [snap] : [] });
          }
          const line = editor.selection.active.line + 1;
          const snap = await activeFileChip(editor).snapshot();
          return controller.send(`Explain the code around line ${line} of ${path.posix.basename(editor.document.uri.path)}.`, { context: snap ? [snap] : [] });
        }),

      'strata.chat.fixProblem': () =>
        withEditor('fix a problem', async (editor) => {
          const diags = diagnosticsAt(editor);
          if (diags.length === 0) {
            void vscode.window.showInformationMessage(
              'Strata: there is no problem at the cursor; put the cursor on a squiggle (or select the lines) and run Fix Problem again.',
            );
            return undefined;
          }
          const range = editor.selection.isEmpty ? rangeAroundDiagnostics(editor.document, diags) : editor.selection;
          const sel = selectionChip(editor, range);
          const snaps = [await diagnosticsChip(editor, diags).snapshot(), sel && (await sel.snapshot())].filter((s) => !!s);
          await provider.reveal(false);
          return controller.send(
            'Fix the problems listed above. Reply with the corrected version of the selected lines in one code block, then explain the fix in a sentence or two.',
            { context: snaps as NonNullable<(typeof snaps)[number]>[] },
          );
        }),

      'strata.chat.addFile': async () => {
        await provider.reveal(false);
        return controller.pickContext();
      },

      'strata.chat.stop': () => controller.stop(),
      'strata.chat.regenerate': () => controller.regenerate(),

      'strata.chat.showHistory': async () => {
        const r = await showHistory(store, controller.conversation.id);
        if (r?.deleted.length || r?.renamed) await controller.afterStoreChange(r.deleted);
        if (r?.open) {
          await controller.open(r.open);
          await provider.reveal(true);
        }
      },

      'strata.chat.clearHistory': async () => {
        const n = (await store.list()).length;
        if (n === 0) {
          void vscode.window.showInformationMessage('Strata: the chat history is already empty.');
          return 0;
        }
        const ok = await vscode.window.showWarningMessage(
          `Delete all ${n} Strata conversation${n > 1 ? 's' : ''} of this workspace? This cannot be undone.`,
          { modal: true },
          'Delete All',
        );
        if (ok !== 'Delete All') return 0;
        const ids = (await store.list()).map((s) => s.id);
        await store.clear();
        await controller.afterStoreChange(ids);
        return n;
      },

      // For tests and other extensions: ask without the UI and get the finished answer back.
      'strata.chat.send': async (text: unknown) => {
        if (typeof text !== 'string') throw new Error('strata.chat.send needs the question as a string');
        await provider.reveal(false);
        return controller.send(text);
      },
      'strata.chat.state': () => ({
        conversationId: controller.conversation.id,
        title: controller.conversation.title,
        turns: controller.conversation.turns.length,
        busy: controller.busy,
        historyDir,
      }),
    }),
  );

  const lm = registerLanguageModelProvider(source, log);
  if (lm) context.subscriptions.push(lm);
  return {
    ask: async (question, file) => {
      controller.prefill(question, file);
      await provider.reveal(true);
    },
  };
}
