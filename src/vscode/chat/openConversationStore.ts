import * as vscode from 'vscode';
import { Conversation } from '../../core/chat/conversation';
import { HistoryStore } from '../../core/chat/historyStore';

// Where the chat's conversations are kept: the history store (one file per conversation) plus,
// in the workspace's memento, which one was open, so that a reloaded window reopens it. A failed
// save is shown to the user (the answer stays on screen) instead of failing the answer.

const OPEN_CONVERSATION_KEY = 'strata.chat.currentConversation';

export class OpenConversationStore {
  constructor(
    readonly store: HistoryStore,
    private readonly memento: vscode.Memento,
    private readonly log: vscode.LogOutputChannel,
    /** Whether `c` is the open conversation (an answer can finish after the user opened another). */
    private readonly isOpen: (c: Conversation) => boolean,
  ) {}

  /** The conversation that was open before the window reloaded, else the newest one. */
  async lastOpen(): Promise<Conversation | undefined> {
    const id = this.memento.get<string>(OPEN_CONVERSATION_KEY);
    const list = await this.store.list().catch(() => []);
    const pick = (id && list.find((s) => s.id === id)) || list[0];
    return pick ? this.store.load(pick.id) : undefined;
  }

  load(id: string): Promise<Conversation | undefined> {
    return this.store.load(id);
  }

  /** Remembers which conversation is open (undefined: a new, unsaved one). */
  async setOpen(id: string | undefined): Promise<void> {
    await this.memento.update(OPEN_CONVERSATION_KEY, id);
  }

  /** Saves `c` unless it is empty, and remembers it as open if it still is once saved. */
  async save(c: Conversation): Promise<void> {
    if (c.turns.length === 0) return;
    c.updatedAt = Date.now();
    try {
      await this.store.save(c);
      if (this.isOpen(c)) await this.setOpen(c.id);
    } catch (e) {
      this.log.error(`chat: could not save the conversation: ${(e as Error).message}`);
      void vscode.window.showErrorMessage(
        `Strata could not save the chat history (${(e as Error).message}): check free disk space and permissions of ${this.store.dir}.`,
      );
    }
  }
}
