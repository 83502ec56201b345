import * as vscode from 'vscode';
import {
  AssistantTurn, ContextSnapshot, Conversation, lastTurn, lastUserTurnIndex, modelDisplayName, newConversation, newId, titleFrom, Turn, UserTurn,
} from '../../core/chat/conversation';
import { HistoryStore } from '../../core/chat/historyStore';
import { buildPrompt, DEFAULT_SYSTEM_PROMPT } from '../../core/chat/promptBuilder';
import { streamAnswer } from '../../core/chat/streamAnswer';
import { LlamaTokenCounter, TokenCounter } from '../../core/chat/tokenCounter';
import { ChipView, HostToWebview, TurnView, WebviewToHost, isSafeExternalLink } from '../../core/chat/webviewProtocol';
import { LlamaClient } from '../../core/llama/client';
import { ServerConnection } from '../../core/llama/serverConnection';
import { FALLBACK_CONTEXT_SIZE, readServerModel } from '../../core/llama/serverModel';
import { ServerConnectionSource } from '../serverConnectionSource';
import { applyRange, insertAtCursor, PROPOSAL_SCHEME, ProposalManager, saveAsNewFile, targetEditor } from './codeActions';
import { activeFileChip, Chip, fileChip, pickFiles, workspacePath } from './context';
import { chatSettings } from './settings';

// The chat's state and behaviour on the host side: the open conversation, the chips, the running
// answer. The webview is a view of this; it can be destroyed and recreated at any time (hidden
// view, reload) and gets the whole state again when it says "ready".

export interface ChatViewPort {
  post(m: HostToWebview): void;
  reveal(focusInput: boolean): Promise<void>;
  setDescription(text: string | undefined): void;
}

interface ServerInfo {
  client: LlamaClient;
  conn: ServerConnection;
  model?: string;
  contextSize?: number;
  counter: TokenCounter;
  at: number;
}

/** How often deltas go to the webview: often enough to look live, rarely enough to stay cheap. */
const DELTA_FLUSH_MS = 33;
/** A streaming answer is saved this often, so a crashed window keeps most of it. */
const STREAM_SAVE_MS = 5000;
const SERVER_INFO_TTL_MS = 15_000;

export class ChatController implements vscode.Disposable {
  conversation: Conversation = newConversation();
  private chips: Chip[] = [];
  private activeFileOff = false;
  private running?: { abort: AbortController; turn: AssistantTurn; done: Promise<AssistantTurn> };
  private view?: ChatViewPort;
  private serverInfo?: ServerInfo;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly busyChanged = new vscode.EventEmitter<boolean>();
  readonly onDidChangeBusy = this.busyChanged.event;

  constructor(
    private readonly source: ServerConnectionSource,
    private readonly log: vscode.LogOutputChannel,
    readonly store: HistoryStore,
    private readonly proposals: ProposalManager,
    private readonly memento: vscode.Memento,
  ) {
    this.disposables.push(
      this.busyChanged,
      vscode.window.onDidChangeActiveTextEditor(() => this.refreshActiveFileChip()),
      source.onDidChangeServer((c) => { if (c.role === 'chat') void this.refreshStatus(); }),
    );
  }

  /** Reopens the conversation that was open before the window reloaded. */
  async restore(): Promise<void> {
    const id = this.memento.get<string>('strata.chat.currentConversation');
    const list = await this.store.list().catch(() => []);
    const pick = (id && list.find((s) => s.id === id)) || list[0];
    if (pick) {
      const c = await this.store.load(pick.id);
      if (c) this.conversation = c;
    }
    this.refreshActiveFileChip(false);
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

  private turnView(t: Turn): TurnView {
    if (t.role === 'user') return { id: t.id, role: 'user', text: t.text, context: t.context.map((c) => ({ kind: c.kind, label: c.label })) };
    return { id: t.id, role: 'assistant', text: t.content, reasoning: t.reasoning, model: t.model, status: t.status, error: t.error, stats: t.stats, notices: t.notices };
  }

  private chipViews(): ChipView[] {
    return this.chips.map(({ id, kind, label, detail }) => ({ id, kind, label, detail }));
  }

  /** Sends everything the webview shows; used when it (re)loads and when the conversation changes. */
  pushAll(): void {
    this.pushConversation();
    this.post({ type: 'chips', chips: this.chipViews() });
    if (this.pendingInput !== undefined) this.post({ type: 'setInput', text: this.pendingInput, focus: true });
    void this.pushStatus();
  }

  /** A question put in the input box for the user to send (the walkthrough's starter question). */
  private pendingInput?: string;

  /** Puts `text` in the input (kept until the view is there) with `file` attached, for the user to send or edit. */
  prefill(text: string, file?: vscode.Uri): void {
    if (file && !this.chips.some((c) => c.kind === 'activeFile' && c.detail?.startsWith(`${workspacePath(file)} (`))) this.addChip(fileChip(file));
    this.pendingInput = text;
    this.post({ type: 'setInput', text, focus: true });
  }

  private pushConversation(): void {
    const c = this.conversation;
    this.post({ type: 'conversation', conversation: { id: c.id, title: c.title, turns: c.turns.map((t) => this.turnView(t)) }, busy: this.busy });
    this.view?.setDescription(c.turns.length ? c.title : undefined);
  }

  private pushChips(): void {
    this.post({ type: 'chips', chips: this.chipViews() });
  }

  /** Re-reads the server (e.g. after the connection file changed) and shows its state. */
  async refreshStatus(): Promise<void> {
    this.serverInfo = undefined;
    await this.pushStatus();
  }

  private async pushStatus(): Promise<void> {
    try {
      const info = await this.server();
      this.post({ type: 'status', model: info.model, contextSize: info.contextSize });
    } catch (e) {
      this.post({ type: 'status', error: (e as Error).message });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Server

  private async server(): Promise<ServerInfo> {
    const { conn, client } = this.source.current('chat');
    const cached = this.serverInfo;
    if (cached && cached.client === client && Date.now() - cached.at < SERVER_INFO_TTL_MS) return cached;
    const info: ServerInfo = {
      client, conn, at: Date.now(),
      counter: cached && cached.client === client ? cached.counter : new LlamaTokenCounter(conn),
      model: modelDisplayName(conn.model),
    };
    try {
      const m = await readServerModel(client, 3000);
      info.contextSize = m.contextSize;
      info.model = modelDisplayName(m.modelPath) ?? info.model;
    } catch (e) {
      this.log.warn(`chat: llama-server /props failed (${(e as Error).message}); assuming a ${FALLBACK_CONTEXT_SIZE}-token context`);
    }
    this.serverInfo = info;
    return info;
  }

  // -------------------------------------------------------------------------------------------
  // Chips

  private refreshActiveFileChip(push = true): void {
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

  addChip(chip: Chip): void {
    // The same selection or file twice is one chip.
    this.chips = this.chips.filter((c) => !(c.kind === chip.kind && c.detail === chip.detail));
    this.chips.push(chip);
    this.pushChips();
  }

  removeChip(id: string): void {
    const chip = this.chips.find((c) => c.id === id);
    if (!chip) return;
    if (chip.kind === 'activeFile') this.activeFileOff = true;
    this.chips = this.chips.filter((c) => c.id !== id);
    this.pushChips();
  }

  async pickContext(): Promise<boolean> {
    const picked = await pickFiles(targetEditor()?.document.uri);
    if (!picked) {
      this.post({ type: 'contextPicked', added: false });
      return false;
    }
    if (picked.active) {
      this.activeFileOff = false;
      this.refreshActiveFileChip(false);
    }
    for (const uri of picked.uris) this.addChip(fileChip(uri));
    this.pushChips();
    this.post({ type: 'contextPicked', added: picked.active || picked.uris.length > 0 });
    return true;
  }

  private async takeSnapshots(): Promise<ContextSnapshot[]> {
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

  // -------------------------------------------------------------------------------------------
  // Conversation actions

  async onMessage(m: WebviewToHost): Promise<void> {
    switch (m.type) {
      case 'ready': this.pushAll(); break;
      case 'send': await this.send(m.text, { replaceLast: m.replaceLast }); break;
      case 'stop': this.stop(); break;
      case 'regenerate': await this.regenerate(); break;
      case 'removeChip': this.removeChip(m.id); break;
      case 'addContext': await this.pickContext(); break;
      case 'newChat': await this.newChat(); break;
      case 'showHistory': await vscode.commands.executeCommand('strata.chat.showHistory'); break;
      case 'openLink':
        if (isSafeExternalLink(m.href)) await vscode.env.openExternal(vscode.Uri.parse(m.href, true));
        else this.log.warn(`chat: refused to open a non-http(s) link from the chat view: ${m.href.slice(0, 200)}`);
        break;
      case 'codeAction': await this.codeAction(m.action, m.code, m.lang); break;
    }
  }

  private async codeAction(action: 'copy' | 'insert' | 'apply' | 'save', code: string, lang: string): Promise<void> {
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
          const choice = await vscode.window.showWarningMessage('Strata: open the file the code should go into, then use Apply again, or save the code as a new file.', 'Save as New File');
          if (choice) await saveAsNewFile(code, lang);
          return;
        }
        const lastUser = this.conversation.turns[lastUserTurnIndex(this.conversation)] as UserTurn | undefined;
        await this.proposals.propose(editor.document, applyRange(editor, lastUser?.context ?? []), code);
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
    await this.memento.update('strata.chat.currentConversation', undefined);
    this.pushConversation();
  }

  async open(id: string): Promise<boolean> {
    if (id === this.conversation.id) return true;
    const c = await this.store.load(id);
    if (!c) return false;
    await this.settle();
    this.conversation = c;
    await this.memento.update('strata.chat.currentConversation', c.id);
    this.pushConversation();
    return true;
  }

  /** Called after the store changed under us (delete, clear, rename). */
  async afterStoreChange(deletedIds: string[]): Promise<void> {
    if (deletedIds.includes(this.conversation.id)) await this.newChat();
    else {
      const c = await this.store.load(this.conversation.id);
      if (c && !this.running) { this.conversation.title = c.title; this.conversation.titleSetByUser = c.titleSetByUser; this.pushConversation(); }
    }
  }

  stop(): void {
    this.running?.abort.abort();
  }

  /** Saves `c` (by default the open conversation; an answer saves the one it belongs to). */
  private async save(c: Conversation = this.conversation): Promise<void> {
    if (c.turns.length === 0) return;
    c.updatedAt = Date.now();
    try {
      await this.store.save(c);
      if (c === this.conversation) await this.memento.update('strata.chat.currentConversation', c.id);
    } catch (e) {
      this.log.error(`chat: could not save the conversation: ${(e as Error).message}`);
      void vscode.window.showErrorMessage(`Strata could not save the chat history (${(e as Error).message}): check free disk space and permissions of ${this.store.dir}.`);
    }
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
    let context = opts.context ?? await this.takeSnapshots();
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
    const done = new Promise<AssistantTurn>((r) => { resolveDone = r; });
    this.running = { abort, turn, done };
    this.busyChanged.fire(true);
    void vscode.commands.executeCommand('setContext', 'strata.chat.busy', true);

    let info: ServerInfo | undefined;
    try {
      info = await this.server();
      turn.model = info.model;
    } catch (e) {
      turn.status = 'error';
      turn.error = (e as Error).message;
    }
    c.turns.push(turn);
    this.post({ type: 'append', turns: [...newTurns, turn].map((t) => this.turnView(t)) });
    this.post({ type: 'busy', busy: true });
    if (info) this.post({ type: 'status', model: info.model, contextSize: info.contextSize });
    else this.post({ type: 'status', error: turn.error });
    await this.save(c);

    if (info && turn.status === 'streaming') {
      await this.stream(c, info, turn, abort);
    }

    if (turn.status === 'streaming') turn.status = 'done';
    if (turn.model) c.model = turn.model;
    this.running = undefined;
    await this.save(c);
    this.post({ type: 'turnEnd', turn: this.turnView(turn) });
    this.post({ type: 'busy', busy: false });
    this.busyChanged.fire(false);
    void vscode.commands.executeCommand('setContext', 'strata.chat.busy', false);
    // The walkthrough's "Ask" step is done once the chat has answered something.
    if (turn.status === 'done' && turn.content.trim()) void vscode.commands.executeCommand('setContext', 'strata.chat.answered', true);
    if (turn.status === 'error') this.log.warn(`chat: ${turn.error}`);
    else this.log.info(`chat: answer ${turn.status}, ${turn.stats?.tokens ?? 0} tokens, ${turn.stats?.tokensPerSecond ?? '?'} tok/s, prompt ${turn.stats?.promptTokens ?? '?'} tokens`);
    resolveDone(turn);
    return turn;
  }

  private async stream(c: Conversation, info: ServerInfo, turn: AssistantTurn, abort: AbortController): Promise<void> {
    const settings = chatSettings();
    const contextSize = info.contextSize ?? FALLBACK_CONTEXT_SIZE;
    const reserve = Math.min(settings.maxTokens, Math.floor(contextSize / 4));
    let prompt;
    try {
      prompt = await buildPrompt(c.turns.slice(0, -1), info.counter, {
        contextSize,
        reserveForAnswer: reserve,
        systemPrompt: settings.systemPrompt ?? DEFAULT_SYSTEM_PROMPT,
      }, abort.signal);
    } catch (e) {
      if (abort.signal.aborted) { turn.status = 'stopped'; return; }
      turn.status = 'error';
      turn.error = (e as Error).message;
      return;
    }
    if (prompt.notices.length) {
      if (!info.counter.exact) prompt.notices.push('Token counts are estimates: llama-server /tokenize did not answer.');
      turn.notices = prompt.notices;
      this.post({ type: 'notices', turnId: turn.id, notices: prompt.notices });
    }

    let pendingContent = '';
    let pendingReasoning = '';
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      if (!pendingContent && !pendingReasoning) return;
      this.post({ type: 'delta', turnId: turn.id, content: pendingContent || undefined, reasoning: pendingReasoning || undefined });
      pendingContent = '';
      pendingReasoning = '';
    };
    let lastSave = Date.now();
    const result = await streamAnswer(info.client, prompt.messages, abort.signal, {
      maxTokens: Math.min(settings.maxTokens, prompt.maxAnswerTokens),
      temperature: settings.temperature,
      promptTokens: prompt.promptTokens,
      onDelta: (d) => {
        turn.content += d.content;
        if (d.reasoning) turn.reasoning = (turn.reasoning ?? '') + d.reasoning;
        pendingContent += d.content;
        pendingReasoning += d.reasoning;
        timer ??= setTimeout(flush, DELTA_FLUSH_MS);
        if (Date.now() - lastSave > STREAM_SAVE_MS) { lastSave = Date.now(); void this.save(c); }
      },
    });
    if (timer) clearTimeout(timer);
    flush();
    turn.content = result.content;
    turn.reasoning = result.reasoning || undefined;
    turn.status = result.status;
    turn.error = result.error;
    turn.stats = result.stats;
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

function isSourceDocument(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme !== PROPOSAL_SCHEME && ['file', 'untitled', 'vscode-remote', 'vscode-userdata'].includes(doc.uri.scheme);
}
