import { AssistantTurn, Conversation } from '../../core/chat/conversation';
import { buildPrompt, DEFAULT_SYSTEM_PROMPT } from '../../core/chat/promptBuilder';
import { streamAnswer } from '../../core/chat/streamAnswer';
import { HostToWebview } from '../../core/chat/webviewProtocol';
import { ChatServerInfo, FALLBACK_CONTEXT_SIZE } from './chatServer';
import { chatSettings } from './settings';

// One answer from prompt to last token: the prompt is built within the model's context, the answer
// streams into `turn`, and its growth reaches the webview and the disk throttled, because a fast
// model sends a token every few milliseconds and a message or a file write per token costs more
// than the token.

/** How often deltas go to the webview: often enough to look live, rarely enough to stay cheap. */
const DELTA_FLUSH_MS = 33;
/** A streaming answer is saved this often, so a crashed window keeps most of it. */
const STREAM_SAVE_MS = 5000;

export interface StreamTarget {
  post(m: HostToWebview): void;
  /** Saves the conversation the answer belongs to. */
  save(): void;
}

/**
 * Streams the answer to the last question of `c` (whose last turn is `turn`) into `turn`, and
 * sets its status ('done', 'stopped' or 'error'), error and stats.
 */
export async function streamToView(c: Conversation, info: ChatServerInfo, turn: AssistantTurn, abort: AbortController, target: StreamTarget): Promise<void> {
  const settings = chatSettings();
  const contextSize = info.contextSize ?? FALLBACK_CONTEXT_SIZE;
  const reserve = Math.min(settings.maxTokens, Math.floor(contextSize / 4));
  let prompt;
  try {
    prompt = await buildPrompt(
      c.turns.slice(0, -1),
      info.counter,
      {
        contextSize,
        reserveForAnswer: reserve,
        systemPrompt: settings.systemPrompt ?? DEFAULT_SYSTEM_PROMPT,
      },
      abort.signal,
    );
  } catch (e) {
    if (abort.signal.aborted) {
      turn.status = 'stopped';
      return;
    }
    turn.status = 'error';
    turn.error = (e as Error).message;
    return;
  }
  if (prompt.notices.length) {
    if (!info.counter.exact) prompt.notices.push('Token counts are estimates: llama-server /tokenize did not answer.');
    turn.notices = prompt.notices;
    target.post({ type: 'notices', turnId: turn.id, notices: prompt.notices });
  }

  const throttle = new DeltaThrottle(turn.id, target);
  const result = await streamAnswer(info.client, prompt.messages, abort.signal, {
    maxTokens: Math.min(settings.maxTokens, prompt.maxAnswerTokens),
    temperature: settings.temperature,
    promptTokens: prompt.promptTokens,
    onDelta: (d) => {
      turn.content += d.content;
      if (d.reasoning) turn.reasoning = (turn.reasoning ?? '') + d.reasoning;
      throttle.add(d.content, d.reasoning);
    },
  });
  throttle.end();
  turn.content = result.content;
  turn.reasoning = result.reasoning || undefined;
  turn.status = result.status;
  turn.error = result.error;
  turn.stats = result.stats;
}

/** Gathers deltas and posts them at most every DELTA_FLUSH_MS; saves at most every STREAM_SAVE_MS. */
class DeltaThrottle {
  private content = '';
  private reasoning = '';
  private timer: NodeJS.Timeout | undefined;
  private lastSave = Date.now();

  constructor(
    private readonly turnId: string,
    private readonly target: StreamTarget,
  ) {}

  add(content: string, reasoning: string): void {
    this.content += content;
    this.reasoning += reasoning;
    this.timer ??= setTimeout(() => this.flush(), DELTA_FLUSH_MS);
    if (Date.now() - this.lastSave > STREAM_SAVE_MS) {
      this.lastSave = Date.now();
      this.target.save();
    }
  }

  /** Posts what is still pending; the answer has ended. */
  end(): void {
    if (this.timer) clearTimeout(this.timer);
    this.flush();
  }

  private flush(): void {
    this.timer = undefined;
    if (!this.content && !this.reasoning) return;
    this.target.post({ type: 'delta', turnId: this.turnId, content: this.content || undefined, reasoning: this.reasoning || undefined });
    this.content = '';
    this.reasoning = '';
  }
}
