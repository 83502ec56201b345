import { ChatDelta, ChatMessage } from '../llama/client';
import { isConnectionLost, isConnectionRefused } from '../llama/connectionErrors';
import { TurnStats } from './conversation';
import { ThinkSplitter } from './thinkSplitter';

// Streams one answer: separates thinking from the answer, times it, and reports how it ended.
// Stopping (abort) is a normal end, not an error: what arrived so far is kept.

export interface ChatBackend {
  chatStream(messages: ChatMessage[], opts: { max_tokens?: number; temperature?: number }, signal?: AbortSignal): AsyncIterable<ChatDelta>;
}

export interface AnswerResult {
  content: string;
  reasoning: string;
  status: 'done' | 'stopped' | 'error';
  error?: string;
  stats: TurnStats;
}

export interface StreamOptions {
  maxTokens?: number;
  temperature?: number;
  promptTokens?: number;
  /** Called for every piece of text as it is split; keep it cheap (batch on the other side). */
  onDelta(d: { content: string; reasoning: string }): void;
  now?: () => number;
}

export async function streamAnswer(backend: ChatBackend, messages: ChatMessage[], signal: AbortSignal, opts: StreamOptions): Promise<AnswerResult> {
  const now = opts.now ?? (() => performance.now());
  const t0 = now();
  let first: number | undefined;
  let last = t0;
  let tokens = 0;
  let content = '';
  let reasoning = '';
  const splitter = new ThinkSplitter();
  const emit = (d: { content: string; reasoning: string }) => {
    if (!d.content && !d.reasoning) return;
    content += d.content;
    reasoning += d.reasoning;
    opts.onDelta(d);
  };
  let status: AnswerResult['status'] = 'done';
  let error: string | undefined;
  try {
    const reqOpts: { max_tokens?: number; temperature?: number } = {};
    if (opts.maxTokens !== undefined) reqOpts.max_tokens = opts.maxTokens;
    if (opts.temperature !== undefined) reqOpts.temperature = opts.temperature;
    for await (const delta of backend.chatStream(messages, reqOpts, signal)) {
      if (signal.aborted) break;
      const r = delta.reasoning_content ?? '';
      const c = delta.content ?? '';
      if (!r && !c) continue;
      tokens++;
      last = now();
      first ??= last;
      const split = c ? splitter.push(c) : { content: '', reasoning: '' };
      emit({ content: split.content, reasoning: r + split.reasoning });
    }
    if (signal.aborted) status = 'stopped';
  } catch (e) {
    if (signal.aborted || (e as Error).name === 'AbortError') {
      status = 'stopped';
    } else {
      status = 'error';
      error = describeChatError(e as Error);
    }
  }
  emit(splitter.end());
  const stats: TurnStats = { tokens, totalMs: Math.round(last - t0) };
  if (first !== undefined) {
    stats.firstTokenMs = Math.round(first - t0);
    if (tokens > 1 && last > first) stats.tokensPerSecond = Math.round(((tokens - 1) / ((last - first) / 1000)) * 10) / 10;
  }
  if (opts.promptTokens !== undefined) stats.promptTokens = opts.promptTokens;
  return { content, reasoning, status, error, stats };
}

function describeChatError(e: Error): string {
  const msg = e.message || String(e);
  if (isConnectionLost(e) || isConnectionRefused(e)) {
    return 'Lost the connection to llama-server: check that the Strata server is running ("Strata: Show Server Status"), then regenerate.';
  }
  if (/exceed|context/i.test(msg) && /size|window|length/i.test(msg)) {
    return `${msg} Start a new chat or attach less context.`;
  }
  return msg;
}
