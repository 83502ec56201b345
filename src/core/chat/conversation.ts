import * as crypto from 'crypto';

// The conversation model: what is persisted, what prompt building reads, what the view shows.
// Plain JSON data so that it survives a reload and a version bump can migrate it.

export const CONVERSATION_VERSION = 1;

/** Text Strata attached to a question: a selection, a file, the problems under the cursor. */
export interface ContextSnapshot {
  kind: 'selection' | 'file' | 'activeFile' | 'diagnostics';
  /** Short text shown on the chip, e.g. "app.ts:10-24". */
  label: string;
  /** Path relative to the workspace when possible, for the prompt. */
  path?: string;
  /** URI string of the document, for apply / diff. */
  uri?: string;
  languageId?: string;
  /** Zero-based, end exclusive of nothing: VS Code's Range fields. */
  range?: { startLine: number; startCharacter: number; endLine: number; endCharacter: number };
  /** Version of the document when captured; an apply checks it to know the range still holds. */
  documentVersion?: number;
  /** Line to keep when the text must be cut to fit the budget (cursor or selection). */
  focusLine?: number;
  text: string;
}

export interface TurnStats {
  /** Streamed tokens (one server-sent delta is one token in llama-server). */
  tokens: number;
  /** Wall time from request to last token. */
  totalMs: number;
  /** Time to the first token (prompt processing + queueing). */
  firstTokenMs?: number;
  /** Generation speed between first and last token. */
  tokensPerSecond?: number;
  /** Prompt size as counted before sending. */
  promptTokens?: number;
}

export interface UserTurn {
  id: string;
  role: 'user';
  text: string;
  context: ContextSnapshot[];
  at: number;
}

export interface AssistantTurn {
  id: string;
  role: 'assistant';
  content: string;
  reasoning?: string;
  /** Model that produced this answer (file name without .gguf). */
  model?: string;
  status: 'streaming' | 'done' | 'stopped' | 'error';
  error?: string;
  stats?: TurnStats;
  /** Visible notes about this answer's prompt, e.g. what was cut to fit the context window. */
  notices?: string[];
  at: number;
}

export type Turn = UserTurn | AssistantTurn;

export interface Conversation {
  version: number;
  id: string;
  title: string;
  /** true once the user renamed it: the automatic title then stops following the first question. */
  titleSetByUser?: boolean;
  createdAt: number;
  updatedAt: number;
  /** The model that answered last. */
  model?: string;
  turns: Turn[];
}

export interface ConversationSummary {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  model?: string;
  turnCount: number;
}

export function newId(): string {
  return crypto.randomBytes(8).toString('hex');
}

export function newConversation(now = Date.now()): Conversation {
  return { version: CONVERSATION_VERSION, id: `${now.toString(36)}-${newId()}`, title: 'New chat', createdAt: now, updatedAt: now, turns: [] };
}

export function summarize(c: Conversation): ConversationSummary {
  return { id: c.id, title: c.title, createdAt: c.createdAt, updatedAt: c.updatedAt, model: c.model, turnCount: c.turns.length };
}

/** A title from the first question: its first line, trimmed to a readable length. */
export function titleFrom(text: string, max = 60): string {
  const line =
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? 'New chat';
  return line.length > max ? line.slice(0, max - 1).trimEnd() + '…' : line;
}

export function lastTurn(c: Conversation): Turn | undefined {
  return c.turns[c.turns.length - 1];
}

export function lastUserTurnIndex(c: Conversation): number {
  for (let i = c.turns.length - 1; i >= 0; i--) if (c.turns[i].role === 'user') return i;
  return -1;
}

/** Checks the shape of a parsed file; returns undefined for anything that is not a conversation. */
export function parseConversation(value: unknown): Conversation | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const c = value as Partial<Conversation>;
  if (typeof c.id !== 'string' || !/^[A-Za-z0-9-]{1,80}$/.test(c.id)) return undefined;
  if (!Array.isArray(c.turns) || typeof c.title !== 'string') return undefined;
  if (typeof c.version !== 'number' || c.version > CONVERSATION_VERSION) return undefined;
  const turns: Turn[] = [];
  for (const t of c.turns as unknown[]) {
    const turn = t as Partial<Turn>;
    if (!turn || typeof turn !== 'object' || typeof turn.id !== 'string') continue;
    if (turn.role === 'user' && typeof (turn as UserTurn).text === 'string') {
      turns.push({ ...(turn as UserTurn), context: Array.isArray((turn as UserTurn).context) ? (turn as UserTurn).context : [] });
    } else if (turn.role === 'assistant' && typeof (turn as AssistantTurn).content === 'string') {
      const a = turn as AssistantTurn;
      // An answer that was streaming when the window died is kept as stopped.
      turns.push({ ...a, status: a.status === 'streaming' ? 'stopped' : a.status });
    }
  }
  return {
    version: CONVERSATION_VERSION,
    id: c.id,
    title: c.title,
    titleSetByUser: c.titleSetByUser === true,
    createdAt: Number(c.createdAt) || 0,
    updatedAt: Number(c.updatedAt) || 0,
    model: typeof c.model === 'string' ? c.model : undefined,
    turns,
  };
}

/** "qwen2.5-coder-32b-instruct-q4_k_m" from "/models/qwen2.5-coder-32b-instruct-q4_k_m.gguf". */
export function modelDisplayName(modelPath: string | undefined): string | undefined {
  if (!modelPath) return undefined;
  const base = modelPath.split(/[\\/]/).pop() ?? modelPath;
  return base.replace(/\.gguf$/i, '').replace(/-\d{5}-of-\d{5}$/, '') || undefined;
}
