import * as vscode from 'vscode';
import {
  AssistantTurn,
  ContextSnapshot,
  Conversation,
  lastTurn,
  lastUserTurnIndex,
  newConversation,
  newId,
  titleFrom,
  Turn,
  UserTurn,
} from '../../core/chat/conversation';
import { HistoryStore } from '../../core/chat/historyStore';
import { conversationView, HostToWebview, isSafeExternalLink, turnView, WebviewToHost } from '../../core/chat/webviewProtocol';
import { AttachedChips } from './attachedChips';
import { ChatServer, ChatServerInfo } from './chatServer';
import { ProposalManager, runCodeAction } from './codeActions';
import { Chip } from './context';
import { OpenConversationStore } from './openConversationStore';
import { streamToView } from './streamToView';

// The chat's state and behaviour on the host side: the open conversation and the running answer,
// and what the webview's messages do to them. The webview is a view of this; it can be destroyed
// and recreated at any time (hidden view, reload) and gets the whole state again when it says
// "ready". The parts live beside it: the attached chips (attachedChips.ts), the server and its
// /props (chatServer.ts), saving (openConversationStore.ts), one answer's stream (streamToView.ts),
// the code blocks' buttons (codeActions.ts).

export interface ChatViewPort {
  post(m: HostToWebview): void;
  reveal(focusInput: boolean): Promise<void>;
  setDescription(text: string | undefined): void;
}

export class ChatController implements vscode.Disposable {
  conversation: Conversation = newConversation();
  private readonly chips: AttachedChips;
  private readonly saved: OpenConversationStore;
  private running?: { abort: AbortController; turn: AssistantTurn; done: Promise<AssistantTurn> };
  private view?: ChatViewPort;
  /** A question put in the input box for the user to send (the walkthrough's starter question). */
  private pendingInput?: string;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly busyChanged = new vscode.EventEmitter<boolean>();
  readonly onDidChangeBusy = this.busyChanged.event;

  constructor(
    private readonly server: ChatServer,
    private readonly log: vscode.LogOutputChannel,
    store: HistoryStore,
    private readonly proposals: ProposalManager,
    memento: vscode.Memento,
  ) {
    this.chips = new AttachedChips((chips) => this.post({ type: 'chips', chips }), log);
    this.saved = new OpenConversationStore(store, memento, log, (c) => c === this.conversation);
    this.disposables.push(
      this.busyChanged,
      vscode.window.onDidChangeActiveTextEditor(() => this.chips.refreshActiveFile()),
      server.onDidChange(() => void this.pushStatus()),
    );
  }

  /** Reopens the conversation that was open before the window reloaded. */
  async restore(): Promise<void> {
    const c = await this.saved.lastOpen();
    if (c) this.conversation = c;
    this.chips.refreshActiveFile(false);
    this.pushConversation();
  }

  attach(view: ChatViewPort | undefined): void {
    this.view = view;
  }

  get busy(): boolean {
    return !!this.running;
  }

  private post(m: HostToWebview): void {
    this.view?.post(m);
  }

  // -------------------------------------------------------------------------------------------
  // Views of the state

  /** Sends everything the webview shows; used when it (re)loads and when the conversation changes. */
  pushAll(): void {
    this.pushConversation();
    this.post({ type: 'chips', chips: this.chips.views() });
    if (this.pendingInput !== undefined) this.post({ type: 'setInput', text: this.pendingInput, focus: true });
    void this.pushStatus();
  }

  /** Puts `text` in the input (kept until the view is there) with `file` attached, for the user to send or edit. */
  prefill(text: string, file?: vscode.Uri): void {
    if (file) this.chips.addFile(file);
    this.pendingInput = text;
    this.post({ type: 'setInput', text, focus: true });
  }

  private pushConversation(): void {
    const c = this.conversation;
    this.post({ type: 'conversation', conversation: conversationView(c), busy: this.busy });
    this.view?.setDescription(c.turns.length ? c.title : undefined);
  }

  private async pushStatus(): Promise<void> {
    try {
      const info = await this.server.info();
      this.post({ type: 'status', model: info.model, contextSize: info.contextSize });
    } catch (e) {
      this.post({ type: 'status', error: (e as Error).message });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Chips

  addChip(chip: Chip): void {
    this.chips.add(chip);
  }

  async pickContext(): Promise<boolean> {
    const picked = await this.chips.pick();
    this.post({ type: 'contextPicked', added: !!picked?.added });
    return !!picked;
  }

  // -------------------------------------------------------------------------------------------
  // Conversation actions

  async onMessage(m: WebviewToHost): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.pushAll();
        break;
      case 'send':
        await this.send(m.text, { replaceLast: m.replaceLast });
        break;
      case 'stop':
        this.stop();
        break;
      case 'regenerate':
        await this.regenerate();
        break;
      case 'removeChip':
        this.chips.remove(m.id);
        break;
      case 'addContext':
        await this.pickContext();
        break;
      case 'newChat':
        await this.newChat();
        break;
      case 'showHistory':
        await vscode.commands.executeCommand('strata.chat.showHistory');
        break;
      case 'openLink':
        if (isSafeExternalLink(m.href)) await vscode.env.openExternal(vscode.Uri.parse(m.href, true));
        else this.log.warn(`chat: refused to open a non-http(s) link from the chat view: ${m.href.slice(0, 200)}`);
        break;
      case 'codeAction': {
        // Apply puts the code where the last question's selection was.
        const lastUser = this.conversation.turns[lastUserTurnIndex(this.conversation)] as UserTurn | undefined;
        await runCodeAction(m.action, m.code, m.lang, this.proposals, lastUser?.context ?? []);
        break;
      }
    }
  }

  /** Stops a running answer and waits until it has been saved. */
  private async settle(): Promise<void> {
    const r = this.running;
    if (!r) return;
    r.abort.abort();
    await r.done;
  }

  async newChat(): Promise<void> {
    await this.settle();
    this.conversation = newConversation();
    await this.saved.setOpen(undefined);
    this.pushConversation();
  }

  async open(id: string): Promise<boolean> {
    if (id === this.conversation.id) return true;
    const c = await this.saved.load(id);
    if (!c) return false;
    await this.settle();
    this.conversation = c;
    await this.saved.setOpen(c.id);
    this.pushConversation();
    return true;
  }

  /** Called after the store changed under us (delete, clear, rename). */
  async afterStoreChange(deletedIds: string[]): Promise<void> {
    if (deletedIds.includes(this.conversation.id)) await this.newChat();
    else {
      const c = await this.saved.load(this.conversation.id);
      if (c && !this.running) {
        this.conversation.title = c.title;
        this.conversation.titleSetByUser = c.titleSetByUser;
        this.pushConversation();
      }
    }
  }

  stop(): void {
    this.running?.abort.abort();
  }

  /** Asks `text` in the open conversation; resolves with the finished answer. */
  async send(text: string, opts: { replaceLast?: boolean; context?: ContextSnapshot[] } = {}): Promise<AssistantTurn | undefined> {
    if (this.running) {
      void vscode.window.showInformationMessage('Strata is still answering: stop it first (Escape in the chat).');
      return undefined;
    }
    if (!text.trim()) return undefined;
    this.pendingInput = undefined;
    const c = this.conversation;
    let context = opts.context ?? (await this.chips.takeSnapshots());
    if (opts.replaceLast) {
      const i = lastUserTurnIndex(c);
      if (i >= 0) {
        const old = c.turns[i] as UserTurn;
        // Edit and resend keeps what the old question carried unless new chips were attached.
        if (!context.some((s) => s.kind !== 'activeFile')) {
          context = [...old.context.filter((s) => !context.some((n) => n.kind === s.kind && n.uri === s.uri)), ...context];
        }
        this.post({ type: 'truncate', fromTurnId: old.id });
        c.turns.splice(i);
      }
    }
    const user: UserTurn = { id: newId(), role: 'user', text, context, at: Date.now() };
    c.turns.push(user);
    if (!c.titleSetByUser && c.turns.filter((t) => t.role === 'user').length === 1) c.title = titleFrom(text);
    this.view?.setDescription(c.title);
    return this.answer([user]);
  }

  /** Drops the last answer and asks again. */
  async regenerate(): Promise<AssistantTurn | undefined> {
    if (this.running) return undefined;
    const c = this.conversation;
    const last = lastTurn(c);
    if (!last) return undefined;
    if (last.role === 'assistant') {
      this.post({ type: 'truncate', fromTurnId: last.id });
      c.turns.pop();
    }
    if (lastTurn(c)?.role !== 'user') return undefined;
    return this.answer([]);
  }

  private async answer(newTurns: Turn[]): Promise<AssistantTurn> {
    const c = this.conversation;
    const turn: AssistantTurn = { id: newId(), role: 'assistant', content: '', status: 'streaming', at: Date.now() };
    const abort = new AbortController();
    let resolveDone!: (t: AssistantTurn) => void;
    const done = new Promise<AssistantTurn>((r) => {
      resolveDone = r;
    });
    this.running = { abort, turn, done };
    this.busyChanged.fire(true);
    void vscode.commands.executeCommand('setContext', 'strata.chat.busy', true);

    let info: ChatServerInfo | undefined;
    try {
      info = await this.server.info();
      turn.model = info.model;
    } catch (e) {
      turn.status = 'error';
      turn.error = (e as Error).message;
    }
    c.turns.push(turn);
    this.post({ type: 'append', turns: [...newTurns, turn].map(turnView) });
    this.post({ type: 'busy', busy: true });
    if (info) this.post({ type: 'status', model: info.model, contextSize: info.contextSize });
    else this.post({ type: 'status', error: turn.error });
    await this.saved.save(c);

    if (info && turn.status === 'streaming') {
      await streamToView(c, info, turn, abort, { post: (m) => this.post(m), save: () => void this.saved.save(c) });
    }

    if (turn.status === 'streaming') turn.status = 'done';
    if (turn.model) c.model = turn.model;
    this.running = undefined;
    await this.saved.save(c);
    this.post({ type: 'turnEnd', turn: turnView(turn) });
    this.post({ type: 'busy', busy: false });
    this.busyChanged.fire(false);
    void vscode.commands.executeCommand('setContext', 'strata.chat.busy', false);
    // The walkthrough's "Ask" step is done once the chat has answered something.
    if (turn.status === 'done' && turn.content.trim()) void vscode.commands.executeCommand('setContext', 'strata.chat.answered', true);
    if (turn.status === 'error') this.log.warn(`chat: ${turn.error}`);
    else
      this.log.info(
        `chat: answer ${turn.status}, ${turn.stats?.tokens ?? 0} tokens, ${turn.stats?.tokensPerSecond ?? '?'} tok/s, prompt ${turn.stats?.promptTokens ?? '?'} tokens`,
      );
    resolveDone(turn);
    return turn;
  }

  /** The answer being streamed, if any (for tests and the lm provider). */
  get current(): Promise<AssistantTurn> | undefined {
    return this.running?.done;
  }

  dispose(): void {
    this.stop();
    for (const d of this.disposables) d.dispose();
  }
}
