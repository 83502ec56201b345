// Chat webview script (bundled by esbuild into dist/media/chat.js, loaded with the page's nonce).
// It only renders and forwards user intent; the extension host does the work. Model output is
// untrusted: it is rendered through markdown.ts (raw HTML off, safe links) and sanitize.ts, never
// assigned as HTML directly, and links/code actions go to the host as messages.
//
// Streaming cost is kept flat: deltas are buffered and applied once per animation frame, finished
// Markdown blocks are rendered once and never touched again, only the unfinished last block is
// re-rendered, and an open code fence is appended as plain text in line chunks.

import type { ChipView, ConversationView, HostToWebview, TurnView, WebviewToHost } from '../src/core/chat/webviewProtocol';
import { HIGHLIGHT_LIMIT, isSafeHref, renderMarkdown, warmLanguage } from './markdown';
import { sanitizedFragment } from './sanitize';
import { BlockScanner } from './streamBlocks';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const post = (m: WebviewToHost) => vscode.postMessage(m);

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const messagesEl = $<HTMLElement>('messages');
const welcomeEl = $<HTMLElement>('welcome');
const statusEl = $<HTMLElement>('status');
const inputEl = $<HTMLTextAreaElement>('input');
const sendBtn = $<HTMLButtonElement>('send');
const stopBtn = $<HTMLButtonElement>('stop');
const addContextBtn = $<HTMLButtonElement>('add-context');
const chipsEl = $<HTMLElement>('chips');
const jumpBtn = $<HTMLButtonElement>('jump');
const editBanner = $<HTMLElement>('edit-banner');
const cancelEditBtn = $<HTMLButtonElement>('cancel-edit');
const announcer = $<HTMLElement>('announcer');
const modelEl = $<HTMLElement>('model');

/** Lines per chunk of a streaming code block: appending relayouts only the last chunk. */
const LIVE_CHUNK_LINES = 64;
/** Code blocks longer than this scroll inside a box so the conversation stays navigable. */
const TALL_BLOCK_LINES = 400;

let busy = false;
let editing = false;
let conversationId = '';
const turns = new Map<string, TurnEl>();
let order: TurnEl[] = [];

// ---------------------------------------------------------------------------------------------
// Small DOM helpers (no innerHTML anywhere except through sanitizedFragment).

function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined) el.textContent = text;
  return el;
}

function icon(name: string): HTMLElement {
  const i = h('i', `codicon codicon-${name}`);
  i.setAttribute('aria-hidden', 'true');
  return i;
}

function iconButton(name: string, label: string, action: string): HTMLButtonElement {
  const b = h('button', 'icon-button');
  b.type = 'button';
  b.title = label;
  b.setAttribute('aria-label', label);
  b.dataset.action = action;
  b.append(icon(name));
  return b;
}

function announce(text: string): void {
  announcer.textContent = '';
  // A change after clearing makes screen readers read it even when the text repeats.
  requestAnimationFrame(() => {
    announcer.textContent = text;
  });
}

// ---------------------------------------------------------------------------------------------
// Code blocks: toolbar with copy / insert / apply / save.

function codeToolbar(lang: string): HTMLElement {
  const bar = h('div', 'code-toolbar');
  bar.append(h('span', 'code-lang', lang || 'text'), h('span', 'spacer'));
  bar.append(
    iconButton('copy', 'Copy code', 'copy'),
    iconButton('insert', 'Insert at cursor', 'insert'),
    iconButton('git-compare', 'Apply to the active file (review as a diff)', 'apply'),
    iconButton('new-file', 'Save as a new file', 'save'),
  );
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', `${lang || 'Code'} block actions`);
  return bar;
}

function languageOf(code: Element | null): string {
  const cls = code ? Array.from(code.classList).find((c) => c.startsWith('language-')) : undefined;
  return cls ? cls.slice('language-'.length) : '';
}

/** Wraps each <pre> of a rendered fragment in a code block with its toolbar. */
function decorate(frag: DocumentFragment): void {
  for (const pre of Array.from(frag.querySelectorAll('pre'))) {
    const code = pre.querySelector('code');
    const lang = languageOf(code);
    const block = h('div', 'code-block');
    pre.replaceWith(block);
    block.append(codeToolbar(lang), pre);
    pre.tabIndex = 0; // scrollable by keyboard
    const text = code?.textContent ?? '';
    if (text.length > HIGHLIGHT_LIMIT || countLines(text, TALL_BLOCK_LINES + 1) > TALL_BLOCK_LINES) block.classList.add('tall');
  }
  for (const table of Array.from(frag.querySelectorAll('table'))) {
    const wrap = h('div', 'table-wrap');
    table.replaceWith(wrap);
    wrap.append(table);
  }
}

function countLines(text: string, stopAt: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i >= 0 && n < stopAt; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function renderChunk(markdown: string): DocumentFragment {
  const frag = sanitizedFragment(renderMarkdown(markdown));
  decorate(frag);
  return frag;
}

/** A fenced code block still being streamed: plain text appended in line chunks. */
class LiveFence {
  readonly block: HTMLElement;
  private readonly code: HTMLElement;
  private chunk!: Text;
  private chunkLines = 0;
  private lines = 0;
  upTo: number;

  constructor(
    readonly start: number,
    codeStart: number,
    lang: string,
  ) {
    this.upTo = codeStart;
    this.block = h('div', 'code-block streaming');
    const pre = h('pre');
    pre.tabIndex = 0;
    this.code = h('code', lang ? `language-${lang}` : undefined);
    pre.append(this.code);
    this.block.append(codeToolbar(lang), pre);
    this.newChunk();
    warmLanguage(lang);
  }

  private newChunk(): void {
    const div = h('div', 'code-chunk');
    this.chunk = document.createTextNode('');
    div.append(this.chunk);
    this.code.append(div);
    this.chunkLines = 0;
  }

  append(source: string): void {
    let end = source.length;
    // Hold back a partial last line that may be the closing fence, so "```" never flashes as code.
    const lastNl = source.lastIndexOf('\n', end - 1);
    const partial = source.slice(lastNl + 1);
    if (/^ {0,3}[`~]*$/.test(partial)) end = lastNl + 1;
    if (end <= this.upTo) return;
    let text = source.slice(this.upTo, end);
    this.upTo = end;
    while (text.length) {
      const room = LIVE_CHUNK_LINES - this.chunkLines;
      let cut = -1;
      let seen = 0;
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
        if (++seen === room) {
          cut = i + 1;
          break;
        }
      }
      const part = cut < 0 ? text : text.slice(0, cut);
      const nl = cut < 0 ? seen : room;
      this.chunk.appendData(part);
      this.chunkLines += nl;
      this.lines += nl;
      text = cut < 0 ? '' : text.slice(cut);
      if (this.chunkLines >= LIVE_CHUNK_LINES) this.newChunk();
    }
    if (this.lines > TALL_BLOCK_LINES) this.block.classList.add('tall');
  }
}

// ---------------------------------------------------------------------------------------------
// Turns

class TurnEl {
  readonly root: HTMLElement;
  private body!: HTMLElement;
  private tail?: HTMLElement;
  private meta?: HTMLElement;
  private notices?: HTMLElement;
  private thinking?: HTMLDetailsElement;
  private thinkingText?: Text;
  private thinkingSummary?: HTMLElement;
  private source = '';
  private pending = '';
  private pendingReasoning = '';
  private committed = 0;
  private scanner = new BlockScanner();
  private live?: LiveFence;
  private reasoningStartedAt = 0;

  constructor(public view: TurnView) {
    this.root = h('article', `turn ${view.role}`);
    this.root.dataset.turnId = view.id;
    if (view.role === 'user') this.buildUser();
    else this.buildAssistant();
  }

  private buildUser(): void {
    const v = this.view;
    this.root.setAttribute('aria-label', 'You');
    const head = h('div', 'turn-head');
    head.append(icon('account'), h('span', 'who', 'You'), h('span', 'spacer'));
    const edit = iconButton('edit', 'Edit and resend', 'edit');
    edit.classList.add('only-last');
    head.append(edit);
    this.root.append(head);
    if (v.context?.length) {
      const list = h('div', 'turn-chips');
      for (const c of v.context) list.append(chipLabel(c.kind, c.label));
      this.root.append(list);
    }
    this.root.append(h('div', 'user-text', v.text));
  }

  private buildAssistant(): void {
    this.root.setAttribute('aria-label', 'Strata');
    const head = h('div', 'turn-head');
    head.append(icon('sparkle'), h('span', 'who', 'Strata'));
    this.root.append(head);
    this.notices = h('div', 'notices');
    this.root.append(this.notices);
    this.body = h('div', 'md');
    this.tail = h('div', 'md-tail');
    this.body.append(this.tail);
    this.root.append(this.body);
    this.meta = h('div', 'meta');
    this.root.append(this.meta);
    this.setNotices(this.view.notices ?? []);
    if (this.view.reasoning) this.addReasoning(this.view.reasoning);
    if (this.view.text) {
      this.pending = this.view.text;
      this.flush();
    }
    if (this.view.status !== 'streaming') this.finish(this.view);
    else this.renderMeta();
  }

  setNotices(list: string[]): void {
    if (!this.notices) return;
    this.notices.replaceChildren(
      ...list.map((n) => {
        const d = h('div', 'notice');
        d.append(icon('warning'), h('span', undefined, n));
        return d;
      }),
    );
  }

  private ensureThinking(): void {
    if (this.thinking) return;
    this.thinking = h('details', 'thinking');
    this.thinkingSummary = h('summary', undefined, 'Thinking…');
    const pre = h('div', 'thinking-text');
    this.thinkingText = document.createTextNode('');
    pre.append(this.thinkingText);
    this.thinking.append(this.thinkingSummary, pre);
    this.root.insertBefore(this.thinking, this.notices ?? null);
    this.reasoningStartedAt = performance.now();
  }

  addReasoning(text: string): void {
    this.ensureThinking();
    this.thinkingText!.appendData(text);
  }

  queue(content?: string, reasoning?: string): void {
    if (content) this.pending += content;
    if (reasoning) this.pendingReasoning += reasoning;
  }

  get dirty(): boolean {
    return this.pending.length > 0 || this.pendingReasoning.length > 0;
  }

  /** Applies buffered deltas: commit finished blocks, re-render only the unfinished tail. */
  flush(): void {
    if (this.pendingReasoning) {
      this.addReasoning(this.pendingReasoning);
      this.pendingReasoning = '';
    }
    if (!this.pending) return;
    if (this.thinking && this.thinkingSummary?.textContent === 'Thinking…') {
      const s = (performance.now() - this.reasoningStartedAt) / 1000;
      this.thinkingSummary.textContent = this.reasoningStartedAt ? `Thought for ${s.toFixed(1)} s` : 'Thoughts';
    }
    this.source += this.pending;
    this.pending = '';
    this.scanner.scan(this.source);
    const to = this.scanner.boundary;
    if (to > this.committed) {
      if (this.live) {
        this.live.block.remove();
        this.live = undefined;
      }
      this.body.insertBefore(renderChunk(this.source.slice(this.committed, to)), this.tail!);
      this.committed = to;
    }
    const f = this.scanner.fence;
    if (f && f.start === this.committed) {
      if (!this.live || this.live.start !== f.start) {
        this.live?.block.remove();
        this.live = new LiveFence(f.start, f.codeStart, f.lang);
        this.body.insertBefore(this.live.block, this.tail!);
      }
      this.tail!.replaceChildren();
      this.live.append(this.source);
    } else {
      const rest = this.source.slice(this.committed);
      this.tail!.replaceChildren(rest.trim() ? renderChunk(rest) : '');
    }
  }

  /** The stream ended: render what is left as a whole and show the stats. */
  finish(view: TurnView): void {
    this.view = view;
    if (view.role !== 'assistant') return;
    if (view.text !== this.source + this.pending) {
      // Missed or reordered deltas (e.g. the view was reloaded mid-stream): start over from the truth.
      this.body.querySelectorAll(':scope > :not(.md-tail)').forEach((n) => n.remove());
      this.source = '';
      this.committed = 0;
      this.scanner = new BlockScanner();
      this.live = undefined;
      this.pending = view.text;
    }
    this.flush();
    if (this.committed < this.source.length || this.live) {
      this.live?.block.remove();
      this.live = undefined;
      const rest = this.source.slice(this.committed);
      if (rest.trim()) this.body.insertBefore(renderChunk(rest), this.tail!);
      this.committed = this.source.length;
    }
    this.tail!.replaceChildren();
    if (view.reasoning && this.thinkingText && this.thinkingText.data !== view.reasoning) this.thinkingText.data = view.reasoning;
    else if (view.reasoning && !this.thinking) this.addReasoning(view.reasoning);
    if (this.thinkingSummary?.textContent === 'Thinking…') this.thinkingSummary.textContent = 'Thoughts';
    this.setNotices(view.notices ?? []);
    this.renderMeta();
  }

  renderMeta(): void {
    if (!this.meta) return;
    const v = this.view;
    const parts: (string | Node)[] = [];
    if (v.status === 'streaming') {
      const s = h('span', 'streaming-indicator');
      s.append(icon('loading'), ' Answering…');
      s.querySelector('.codicon')!.classList.add('codicon-modifier-spin');
      parts.push(s);
    }
    const info = h('span', 'stats');
    const bits: string[] = [];
    if (v.model) bits.push(v.model);
    if (v.stats?.tokensPerSecond !== undefined) bits.push(`${v.stats.tokensPerSecond.toFixed(1)} tok/s`);
    if (v.stats && v.status !== 'streaming') bits.push(`${v.stats.tokens} tokens`);
    if (v.status === 'stopped') bits.push('stopped');
    info.textContent = bits.join(' · ');
    if (v.stats?.firstTokenMs !== undefined)
      info.title = `First token after ${(v.stats.firstTokenMs / 1000).toFixed(2)} s; prompt ${v.stats.promptTokens ?? '?'} tokens`;
    parts.push(info, h('span', 'spacer'));
    if (v.status !== 'streaming') {
      parts.push(iconButton('copy', 'Copy answer', 'copy-answer'));
      const regen = iconButton('refresh', 'Regenerate', 'regenerate');
      regen.classList.add('only-last');
      parts.push(regen);
    }
    this.meta.replaceChildren(...parts);
    this.root.querySelector(':scope > .error')?.remove();
    if (v.status === 'error' && v.error) {
      const err = h('div', 'error');
      err.setAttribute('role', 'alert');
      err.append(icon('error'), h('span', undefined, v.error));
      this.meta.before(err);
    }
  }

  get text(): string {
    return this.view.role === 'assistant' ? this.source + this.pending : this.view.text;
  }
}

function chipLabel(kind: ChipView['kind'], label: string): HTMLElement {
  const c = h('span', `chip static ${kind}`);
  c.append(icon(chipIcon(kind)), h('span', 'chip-label', label));
  return c;
}

function chipIcon(kind: ChipView['kind']): string {
  switch (kind) {
    case 'selection':
      return 'selection';
    case 'diagnostics':
      return 'warning';
    case 'activeFile':
      return 'go-to-file';
    default:
      return 'file';
  }
}

// ---------------------------------------------------------------------------------------------
// Frame scheduling and stick-to-bottom

let frameScheduled = false;
let stuck = true;
let lastScrollTop = 0;

function scheduleFrame(): void {
  if (frameScheduled) return;
  frameScheduled = true;
  requestAnimationFrame(() => {
    frameScheduled = false;
    for (const t of order) if (t.dirty) t.flush();
    afterDomChange();
  });
}

function afterDomChange(): void {
  if (stuck) {
    messagesEl.scrollTop = messagesEl.scrollHeight;
    lastScrollTop = messagesEl.scrollTop;
  }
  jumpBtn.hidden = stuck;
}

function distanceFromBottom(): number {
  return messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight;
}

messagesEl.addEventListener(
  'scroll',
  () => {
    const top = messagesEl.scrollTop;
    if (distanceFromBottom() <= 24) stuck = true;
    else if (top < lastScrollTop - 1) stuck = false; // the user moved up; content growth never lowers scrollTop
    lastScrollTop = top;
    jumpBtn.hidden = stuck;
  },
  { passive: true },
);
messagesEl.addEventListener(
  'wheel',
  (e) => {
    if (e.deltaY < 0 && messagesEl.scrollHeight > messagesEl.clientHeight) {
      stuck = false;
      jumpBtn.hidden = false;
    }
  },
  { passive: true },
);
messagesEl.addEventListener('keydown', (e) => {
  if (['PageUp', 'ArrowUp', 'Home'].includes(e.key)) {
    stuck = false;
    jumpBtn.hidden = false;
  }
});
// Heights also change after a render (fonts arriving, the composer growing, a <details> opening):
// keep following the bottom through those too.
const resizeObserver = new ResizeObserver(() => {
  if (stuck) {
    messagesEl.scrollTop = messagesEl.scrollHeight;
    lastScrollTop = messagesEl.scrollTop;
  }
});
resizeObserver.observe(messagesEl);

jumpBtn.addEventListener('click', () => {
  stuck = true;
  afterDomChange();
  inputEl.focus();
});

// ---------------------------------------------------------------------------------------------
// Conversation rendering

function updateLastMarkers(): void {
  let lastUser: TurnEl | undefined;
  let lastAssistant: TurnEl | undefined;
  for (const t of order) {
    t.root.classList.remove('last');
    if (t.view.role === 'user') lastUser = t;
    else lastAssistant = t;
  }
  if (!busy) {
    lastUser?.root.classList.add('last');
    if (lastAssistant && order[order.length - 1] === lastAssistant) lastAssistant.root.classList.add('last');
  }
  welcomeEl.hidden = order.length > 0;
}

function appendTurn(v: TurnView): void {
  const t = new TurnEl(v);
  turns.set(v.id, t);
  order.push(t);
  messagesEl.append(t.root);
  resizeObserver.observe(t.root);
}

function showConversation(c: ConversationView): void {
  if (c.id !== conversationId) stuck = true;
  conversationId = c.id;
  for (const t of order) {
    resizeObserver.unobserve(t.root);
    t.root.remove();
  }
  turns.clear();
  order = [];
  for (const v of c.turns) appendTurn(v);
  updateLastMarkers();
  afterDomChange();
}

function setBusy(b: boolean): void {
  busy = b;
  sendBtn.hidden = b;
  stopBtn.hidden = !b;
  document.body.classList.toggle('busy', b);
  updateLastMarkers();
}

function renderChips(chips: ChipView[]): void {
  chipsEl.replaceChildren(
    ...chips.map((c) => {
      const el = chipLabel(c.kind, c.label);
      el.classList.remove('static');
      el.setAttribute('role', 'listitem');
      if (c.detail) el.title = c.detail;
      const rm = iconButton('close', `Remove ${c.label}`, 'remove-chip');
      rm.dataset.chipId = c.id;
      el.append(rm);
      return el;
    }),
  );
}

function setStatus(s: { model?: string; contextSize?: number; error?: string }): void {
  if (s.error) {
    statusEl.hidden = false;
    statusEl.className = 'status error';
    statusEl.replaceChildren(icon('warning'), h('span', undefined, s.error));
  } else {
    statusEl.hidden = true;
    statusEl.replaceChildren();
  }
  modelEl.textContent = s.model ?? '';
  modelEl.title = s.model ? `Answers come from ${s.model}${s.contextSize ? `, context window ${s.contextSize.toLocaleString('en-US')} tokens` : ''}` : '';
}

// ---------------------------------------------------------------------------------------------
// Host messages

function handle(m: HostToWebview): void {
  switch (m.type) {
    case 'conversation':
      setBusy(m.busy);
      showConversation(m.conversation);
      break;
    case 'append':
      for (const v of m.turns) appendTurn(v);
      if (m.turns.some((t) => t.role === 'user')) stuck = true;
      updateLastMarkers();
      afterDomChange();
      break;
    case 'truncate': {
      const i = order.findIndex((t) => t.view.id === m.fromTurnId);
      if (i >= 0) {
        for (const t of order.slice(i)) {
          resizeObserver.unobserve(t.root);
          t.root.remove();
          turns.delete(t.view.id);
        }
        order = order.slice(0, i);
      }
      updateLastMarkers();
      break;
    }
    case 'delta': {
      const t = turns.get(m.turnId);
      if (!t) return;
      t.queue(m.content, m.reasoning);
      scheduleFrame();
      break;
    }
    case 'turnEnd': {
      const t = turns.get(m.turn.id);
      if (!t) return;
      t.finish(m.turn);
      updateLastMarkers();
      afterDomChange();
      announce(m.turn.status === 'error' ? `Error: ${m.turn.error ?? ''}` : m.turn.status === 'stopped' ? 'Answer stopped.' : 'Answer complete.');
      break;
    }
    case 'notices':
      turns.get(m.turnId)?.setNotices(m.notices);
      break;
    case 'busy':
      setBusy(m.busy);
      break;
    case 'chips':
      renderChips(m.chips);
      break;
    case 'status':
      setStatus(m);
      break;
    case 'setInput':
      inputEl.value = m.text;
      autosize();
      saveState();
      if (m.focus) {
        inputEl.focus();
        inputEl.setSelectionRange(inputEl.value.length, inputEl.value.length);
      }
      break;
    case 'focusInput':
      inputEl.focus();
      break;
    case 'contextPicked':
      // Drop the "@" that opened the picker once it did its job.
      if (m.added && atTrigger >= 0 && inputEl.value[atTrigger] === '@') {
        inputEl.value = inputEl.value.slice(0, atTrigger) + inputEl.value.slice(atTrigger + 1);
        inputEl.setSelectionRange(atTrigger, atTrigger);
        saveState();
      }
      atTrigger = -1;
      inputEl.focus();
      break;
  }
}

window.addEventListener('message', (e: MessageEvent) => {
  const m = e.data as HostToWebview;
  if (!m || typeof m !== 'object' || typeof (m as { type?: unknown }).type !== 'string') return;
  handle(m);
});

// ---------------------------------------------------------------------------------------------
// User actions

function autosize(): void {
  inputEl.style.height = 'auto';
  inputEl.style.height = Math.min(inputEl.scrollHeight, Math.round(window.innerHeight * 0.4)) + 'px';
}

let saveTimer: number | undefined;
function saveState(): void {
  clearTimeout(saveTimer);
  saveTimer = window.setTimeout(() => vscode.setState({ input: inputEl.value, editing }), 200);
}

function setEditing(on: boolean): void {
  editing = on;
  editBanner.hidden = !on;
  document.body.classList.toggle('editing', on);
}

function send(): void {
  const text = inputEl.value;
  if (!text.trim() || busy) return;
  post({ type: 'send', text, replaceLast: editing });
  inputEl.value = '';
  setEditing(false);
  autosize();
  saveState();
  stuck = true;
}

inputEl.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
    e.preventDefault();
    send();
  } else if (e.key === 'Escape') {
    if (busy) {
      e.preventDefault();
      post({ type: 'stop' });
    } else if (editing) {
      e.preventDefault();
      setEditing(false);
      inputEl.value = '';
      autosize();
      saveState();
    }
  }
});

let atTrigger = -1;
inputEl.addEventListener('input', (e) => {
  autosize();
  saveState();
  const ie = e as InputEvent;
  if (ie.data === '@') {
    const pos = inputEl.selectionStart - 1;
    const before = pos > 0 ? inputEl.value[pos - 1] : ' ';
    const after = inputEl.value[pos + 1];
    // "@" starting a word (not an email, not a decorator being typed mid-word) opens the file picker.
    if (/\s/.test(before) && (after === undefined || /\s/.test(after))) {
      atTrigger = pos;
      post({ type: 'addContext' });
    }
  }
});

sendBtn.addEventListener('click', send);
stopBtn.addEventListener('click', () => post({ type: 'stop' }));
addContextBtn.addEventListener('click', () => {
  atTrigger = -1;
  post({ type: 'addContext' });
});
cancelEditBtn.addEventListener('click', () => {
  setEditing(false);
  inputEl.value = '';
  autosize();
  saveState();
  inputEl.focus();
});

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && busy && document.activeElement !== inputEl) post({ type: 'stop' });
});

chipsEl.addEventListener('click', (e) => {
  const b = (e.target as Element).closest<HTMLButtonElement>('button[data-action="remove-chip"]');
  if (b?.dataset.chipId) {
    post({ type: 'removeChip', id: b.dataset.chipId });
    inputEl.focus();
  }
});

/** Code of a block, without the final newline markdown-it keeps. */
function blockCode(block: Element): string {
  const text = block.querySelector('code')?.textContent ?? block.querySelector('pre')?.textContent ?? '';
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

function onLinkActivate(e: Event): void {
  const a = (e.target as Element).closest?.('a');
  if (!a) return;
  // Never let the webview navigate; only http(s) links go to the host, which opens them externally.
  e.preventDefault();
  const href = a.getAttribute('href');
  if (href && isSafeHref(href) && (e.type === 'click' || (e as MouseEvent).button === 1)) post({ type: 'openLink', href });
}
messagesEl.addEventListener('click', onLinkActivate, true);
messagesEl.addEventListener('auxclick', onLinkActivate, true);
document.addEventListener('dragstart', (e) => {
  if ((e.target as Element).closest?.('a')) e.preventDefault();
});

messagesEl.addEventListener('click', (e) => {
  const b = (e.target as Element).closest<HTMLButtonElement>('button[data-action]');
  if (!b) return;
  const action = b.dataset.action!;
  const turnEl = b.closest<HTMLElement>('.turn');
  const turn = turnEl ? turns.get(turnEl.dataset.turnId!) : undefined;
  switch (action) {
    case 'copy':
    case 'insert':
    case 'apply':
    case 'save': {
      const block = b.closest('.code-block');
      if (!block) return;
      post({ type: 'codeAction', action, code: blockCode(block), lang: languageOf(block.querySelector('code')) });
      if (action === 'copy') flash(b, 'check');
      break;
    }
    case 'copy-answer':
      if (turn) {
        post({ type: 'codeAction', action: 'copy', code: turn.text, lang: 'markdown' });
        flash(b, 'check');
      }
      break;
    case 'regenerate':
      if (!busy) post({ type: 'regenerate' });
      break;
    case 'edit':
      if (turn && !busy) {
        inputEl.value = turn.view.text;
        setEditing(true);
        autosize();
        saveState();
        inputEl.focus();
      }
      break;
  }
});

function flash(b: HTMLElement, name: string): void {
  const i = b.querySelector('.codicon');
  if (!i) return;
  const old = Array.from(i.classList).find((c) => c.startsWith('codicon-') && c !== 'codicon-modifier-spin');
  if (!old) return;
  i.classList.replace(old, `codicon-${name}`);
  setTimeout(() => i.classList.replace(`codicon-${name}`, old), 1200);
}

// ---------------------------------------------------------------------------------------------
// Start

const saved = vscode.getState() as { input?: string; editing?: boolean } | undefined;
if (saved?.input) {
  inputEl.value = saved.input;
  setEditing(saved.editing === true);
}
autosize();
window.addEventListener('resize', autosize);
post({ type: 'ready' });
inputEl.focus();
