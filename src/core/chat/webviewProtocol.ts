// Messages between the extension host and the chat webview (postMessage, both ways). The webview
// bundle imports only the types. Everything from the webview is untrusted input to the host and is
// checked by `parseFromWebview`.

import type { Conversation, Turn, TurnStats } from './conversation';

export interface ChipView {
  id: string;
  kind: 'selection' | 'file' | 'activeFile' | 'diagnostics';
  label: string;
  /** Tooltip: full path, range. */
  detail?: string;
}

export interface TurnView {
  id: string;
  role: 'user' | 'assistant';
  /** User text, or the answer's content (Markdown, untrusted). */
  text: string;
  reasoning?: string;
  /** Chips the question carried. */
  context?: { kind: ChipView['kind']; label: string }[];
  model?: string;
  status?: 'streaming' | 'done' | 'stopped' | 'error';
  error?: string;
  stats?: TurnStats;
  notices?: string[];
}

export interface ConversationView {
  id: string;
  title: string;
  turns: TurnView[];
}

/** How the webview shows a turn: the text it renders and the chips' names, not their contents. */
export function turnView(t: Turn): TurnView {
  if (t.role === 'user') return { id: t.id, role: 'user', text: t.text, context: t.context.map((c) => ({ kind: c.kind, label: c.label })) };
  return {
    id: t.id,
    role: 'assistant',
    text: t.content,
    reasoning: t.reasoning,
    model: t.model,
    status: t.status,
    error: t.error,
    stats: t.stats,
    notices: t.notices,
  };
}

export function conversationView(c: Conversation): ConversationView {
  return { id: c.id, title: c.title, turns: c.turns.map(turnView) };
}

export type HostToWebview =
  | { type: 'conversation'; conversation: ConversationView; busy: boolean }
  | { type: 'append'; turns: TurnView[] }
  /** Drops turns from the given id on (regenerate, edit and resend). */
  | { type: 'truncate'; fromTurnId: string }
  | { type: 'delta'; turnId: string; content?: string; reasoning?: string }
  | { type: 'turnEnd'; turn: TurnView }
  | { type: 'notices'; turnId: string; notices: string[] }
  | { type: 'busy'; busy: boolean }
  | { type: 'chips'; chips: ChipView[] }
  | { type: 'status'; model?: string; contextSize?: number; error?: string }
  | { type: 'setInput'; text: string; focus: boolean }
  | { type: 'focusInput' }
  /** Answer to "addContext": whether the picker attached something. */
  | { type: 'contextPicked'; added: boolean };

export type CodeAction = 'copy' | 'insert' | 'apply' | 'save';

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'send'; text: string; replaceLast?: boolean }
  | { type: 'stop' }
  | { type: 'regenerate' }
  | { type: 'removeChip'; id: string }
  | { type: 'addContext' }
  | { type: 'codeAction'; action: CodeAction; code: string; lang: string }
  | { type: 'openLink'; href: string }
  | { type: 'newChat' }
  | { type: 'showHistory' };

const MAX_TEXT = 4 * 1024 * 1024;

/** Validates a message from the webview; returns undefined for anything malformed. */
export function parseFromWebview(m: unknown): WebviewToHost | undefined {
  if (!m || typeof m !== 'object') return undefined;
  const o = m as Record<string, unknown>;
  const str = (v: unknown, max = MAX_TEXT) => (typeof v === 'string' && v.length <= max ? v : undefined);
  switch (o.type) {
    case 'ready':
    case 'stop':
    case 'regenerate':
    case 'addContext':
    case 'newChat':
    case 'showHistory':
      return { type: o.type };
    case 'send': {
      const text = str(o.text);
      return text === undefined ? undefined : { type: 'send', text, replaceLast: o.replaceLast === true };
    }
    case 'removeChip': {
      const id = str(o.id, 200);
      return id === undefined ? undefined : { type: 'removeChip', id };
    }
    case 'codeAction': {
      const code = str(o.code);
      const lang = str(o.lang, 100) ?? '';
      const action = o.action;
      if (code === undefined || (action !== 'copy' && action !== 'insert' && action !== 'apply' && action !== 'save')) return undefined;
      return { type: 'codeAction', action, code, lang };
    }
    case 'openLink': {
      const href = str(o.href, 8192);
      return href === undefined ? undefined : { type: 'openLink', href };
    }
    default:
      return undefined;
  }
}

/** The only links the chat opens: absolute http(s) URLs. */
export function isSafeExternalLink(href: string): boolean {
  let u: URL;
  try {
    u = new URL(href);
  } catch {
    return false;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname.length > 0;
}
