import { ChatMessage } from '../llama/client';
import { AssistantTurn, ContextSnapshot, Conversation, UserTurn } from './conversation';
import { estimateTokens, TokenCounter } from './tokenCounter';

// Builds the messages for /v1/chat/completions within the model's context window. What does not
// fit is cut in a fixed order, and every cut is reported so the view can show it (the user
// must never get a silent overflow error or a silently forgotten file):
//   1. attachments of earlier questions, oldest first;
//   2. earlier exchanges, oldest first;
//   3. the current attachments: files before the selection before the problems, largest first,
//      each kept around its focus line;
//   4. the middle of the current question.

export const DEFAULT_SYSTEM_PROMPT =
  "You are Strata, a coding assistant running locally in the user's editor. Answer concisely. " +
  'When you propose code, put it in fenced code blocks with a language tag; when you change a file or ' +
  'a selection the user attached, give the complete replacement for it in one block.';

/** Tokens a chat template adds around each message (ChatML: `<|im_start|>role\n` … `<|im_end|>\n`). */
export const PER_MESSAGE_OVERHEAD = 8;

export interface BudgetOptions {
  /** The model's context window (n_ctx of a slot). */
  contextSize: number;
  /** Tokens kept free for the answer. */
  reserveForAnswer: number;
  systemPrompt?: string;
}

export interface BuiltPrompt {
  messages: ChatMessage[];
  /** Estimated total prompt tokens (counted pieces + template overhead). */
  promptTokens: number;
  /** Tokens left for the answer; pass as max_tokens. */
  maxAnswerTokens: number;
  /** Human-readable notes on what was cut, empty when everything fit. */
  notices: string[];
  /** true when a part was cut or left out. */
  truncated: boolean;
}

export class ContextWindowTooSmallError extends Error {}

interface Piece {
  text: string;
  tokens: number;
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** Fences `text` with a backtick run longer than any inside it, so attached Markdown cannot close the fence. */
export function fence(text: string, lang = ''): string {
  let longest = 0;
  for (const m of text.matchAll(/`{3,}/g)) longest = Math.max(longest, m[0].length);
  const ticks = '`'.repeat(Math.max(3, longest + 1));
  return `${ticks}${lang}\n${text}${text.endsWith('\n') ? '' : '\n'}${ticks}`;
}

function describeContext(c: ContextSnapshot): string {
  const where = c.path ?? c.label;
  const lines = c.range ? ` (lines ${c.range.startLine + 1}-${c.range.endLine + 1})` : '';
  switch (c.kind) {
    case 'selection':
      return `Selected code from ${where}${lines}:`;
    case 'diagnostics':
      return `Problems reported by the editor in ${where}:`;
    case 'activeFile':
      return `The file open in the editor, ${where}:`;
    default:
      return `File ${where}:`;
  }
}

export function renderContext(c: ContextSnapshot): string {
  if (c.kind === 'diagnostics') return `${describeContext(c)}\n${c.text}`;
  return `${describeContext(c)}\n${fence(c.text, c.languageId ?? '')}`;
}

export function renderUserMessage(text: string, context: ContextSnapshot[]): string {
  if (context.length === 0) return text;
  return `${context.map(renderContext).join('\n\n')}\n\n${text}`;
}

/** Keeps whole lines of `text` around `focusLine` so that its length is at most `maxChars`. */
export function cutAround(text: string, maxChars: number, focusLine?: number): { text: string; omittedBefore: number; omittedAfter: number } {
  if (text.length <= maxChars) return { text, omittedBefore: 0, omittedAfter: 0 };
  const lines = text.split('\n');
  const focus = Math.min(Math.max(focusLine ?? 0, 0), lines.length - 1);
  let lo = focus;
  let hi = focus; // inclusive
  let size = lines[focus].length;
  if (size > maxChars) {
    return { text: lines[focus].slice(0, Math.max(0, maxChars)), omittedBefore: focus, omittedAfter: lines.length - focus - 1 };
  }
  // Grow alternately, favouring what comes after the focus (code below the cursor is usually what matters next).
  for (;;) {
    const canDown = hi + 1 < lines.length && size + 1 + lines[hi + 1].length <= maxChars;
    if (canDown) {
      hi++;
      size += 1 + lines[hi].length;
    }
    const canUp = lo > 0 && size + 1 + lines[lo - 1].length <= maxChars;
    if (canUp) {
      lo--;
      size += 1 + lines[lo].length;
    }
    if (!canDown && !canUp) break;
  }
  return { text: lines.slice(lo, hi + 1).join('\n'), omittedBefore: lo, omittedAfter: lines.length - 1 - hi };
}

async function piece(counter: TokenCounter, text: string, signal?: AbortSignal): Promise<Piece> {
  return { text, tokens: await counter.count(text, signal) };
}

const CONTEXT_PRIORITY: Record<ContextSnapshot['kind'], number> = { file: 0, activeFile: 1, selection: 2, diagnostics: 3 };

/**
 * Builds the prompt for answering the last user turn of `turns` (which must end with a user turn).
 * Earlier assistant turns that failed are skipped; their thinking is never sent back.
 */
export async function buildPrompt(turns: Conversation['turns'], counter: TokenCounter, opts: BudgetOptions, signal?: AbortSignal): Promise<BuiltPrompt> {
  const current = turns[turns.length - 1];
  if (!current || current.role !== 'user') throw new Error('buildPrompt: the conversation must end with a question');
  const budget = opts.contextSize - opts.reserveForAnswer;
  const notices: string[] = [];
  const system = await piece(counter, opts.systemPrompt ?? DEFAULT_SYSTEM_PROMPT, signal);

  // Earlier exchanges as (question, answer) pairs; a question without a usable answer is dropped.
  interface Exchange {
    user: UserTurn;
    question: Piece;
    context: Piece | undefined;
    answer: Piece;
  }
  const exchanges: Exchange[] = [];
  for (let i = 0; i < turns.length - 1; i++) {
    const u = turns[i];
    const a = turns[i + 1];
    if (u.role !== 'user' || !a || a.role !== 'assistant') continue;
    const ans = a as AssistantTurn;
    if (ans.status === 'error' || ans.content.trim() === '') continue;
    exchanges.push({
      user: u,
      question: await piece(counter, u.text, signal),
      context: u.context.length ? await piece(counter, u.context.map(renderContext).join('\n\n') + '\n\n', signal) : undefined,
      answer: await piece(counter, ans.content, signal),
    });
  }

  const question = await piece(counter, current.text, signal);
  const contexts: { snap: ContextSnapshot; header: Piece; body: Piece; full: number }[] = [];
  for (const snap of current.context) {
    const header = await piece(counter, describeContext(snap) + '\n' + (snap.kind === 'diagnostics' ? '' : '```\n```'), signal);
    const body = await piece(counter, snap.text, signal);
    contexts.push({ snap, header, body, full: body.tokens });
  }

  const exchangeTokens = (e: Exchange) => e.question.tokens + (e.context?.tokens ?? 0) + e.answer.tokens + 2 * PER_MESSAGE_OVERHEAD;
  const contextTokens = () => contexts.reduce((s, c) => s + c.header.tokens + c.body.tokens + 2, 0);
  const total = () =>
    system.tokens + PER_MESSAGE_OVERHEAD + exchanges.reduce((s, e) => s + exchangeTokens(e), 0) + contextTokens() + question.tokens + PER_MESSAGE_OVERHEAD;

  // 1. attachments of earlier questions.
  let droppedContexts = 0;
  for (const e of exchanges) {
    if (total() <= budget) break;
    if (e.context) {
      e.context = undefined;
      droppedContexts++;
    }
  }
  if (droppedContexts)
    notices.push(`Left out the attachments of ${droppedContexts} earlier question${droppedContexts > 1 ? 's' : ''} to fit the context window.`);

  // 2. earlier exchanges.
  let droppedExchanges = 0;
  while (exchanges.length && total() > budget) {
    exchanges.shift();
    droppedExchanges++;
  }
  if (droppedExchanges)
    notices.push(
      `Left out the ${droppedExchanges === 1 ? 'earliest exchange' : `${droppedExchanges} earliest exchanges`} of this conversation to fit the context window.`,
    );

  // 3. current attachments, by priority then size.
  if (total() > budget && contexts.length) {
    const order = [...contexts].sort((a, b) => CONTEXT_PRIORITY[a.snap.kind] - CONTEXT_PRIORITY[b.snap.kind] || b.body.tokens - a.body.tokens);
    for (const c of order) {
      const over = total() - budget;
      if (over <= 0) break;
      const target = Math.max(0, c.body.tokens - over);
      await shrinkTo(c, target, counter, signal);
      const name = c.snap.path ?? c.snap.label;
      if (c.body.tokens === 0) notices.push(`Left out ${name} (${fmt(c.full)} tokens): it does not fit the context window.`);
      else notices.push(`Cut ${name} to ${fmt(c.body.tokens)} of its ${fmt(c.full)} tokens to fit the context window.`);
    }
    for (let i = contexts.length - 1; i >= 0; i--) if (contexts[i].body.tokens === 0) contexts.splice(i, 1);
  }

  // 4. the question itself.
  let questionText = current.text;
  if (total() > budget) {
    const over = total() - budget;
    const keepTokens = question.tokens - over;
    if (keepTokens < 16) {
      throw new ContextWindowTooSmallError(
        `The context window (${fmt(opts.contextSize)} tokens, ${fmt(opts.reserveForAnswer)} kept for the answer) is too small for this question: start the server with a larger context (-c) or lower strata.chat.maxTokens.`,
      );
    }
    const ratio = questionText.length / Math.max(1, question.tokens);
    for (let attempt = 0; attempt < 4 && question.tokens > keepTokens; attempt++) {
      const keepChars = Math.floor(keepTokens * ratio * (1 - 0.1 * attempt));
      const head = Math.floor(keepChars * 0.6);
      const tail = keepChars - head;
      questionText = current.text.slice(0, head) + '\n[…]\n' + current.text.slice(current.text.length - tail);
      question.tokens = await counter.count(questionText, signal);
    }
    notices.push(`Cut the middle of your message to fit the context window (${fmt(opts.contextSize)} tokens).`);
  }

  const messages: ChatMessage[] = [{ role: 'system', content: system.text }];
  for (const e of exchanges) {
    messages.push({ role: 'user', content: (e.context ? e.context.text : '') + e.question.text });
    messages.push({ role: 'assistant', content: e.answer.text });
  }
  const snaps = contexts.map((c) => ({ ...c.snap, text: c.body.text }));
  messages.push({ role: 'user', content: renderUserMessage(questionText, snaps) });
  const promptTokens = total();
  return {
    messages,
    promptTokens,
    maxAnswerTokens: Math.max(16, opts.contextSize - promptTokens),
    notices,
    truncated: notices.length > 0,
  };
}

async function shrinkTo(c: { snap: ContextSnapshot; body: Piece }, targetTokens: number, counter: TokenCounter, signal?: AbortSignal): Promise<void> {
  if (targetTokens < 32) {
    c.body = { text: '', tokens: 0 };
    return;
  }
  const full = c.snap.text;
  const ratio = full.length / Math.max(1, c.body.tokens);
  const focus = c.snap.focusLine;
  for (let attempt = 0; attempt < 5; attempt++) {
    const maxChars = Math.floor(targetTokens * ratio * (1 - 0.08 * attempt)) - 80;
    if (maxChars <= 0) break;
    const cut = cutAround(full, maxChars, focus);
    const marked =
      (cut.omittedBefore ? `[… ${cut.omittedBefore} lines above left out …]\n` : '') +
      cut.text +
      (cut.omittedAfter ? `\n[… ${cut.omittedAfter} lines below left out …]` : '');
    const tokens = await counter.count(marked, signal);
    if (tokens <= targetTokens) {
      c.body = { text: marked, tokens };
      return;
    }
  }
  c.body = { text: '', tokens: 0 };
}

/** Rough prompt size without a server, for display before sending. */
export function estimatePromptTokens(text: string, context: ContextSnapshot[]): number {
  return estimateTokens(renderUserMessage(text, context)) + PER_MESSAGE_OVERHEAD;
}
