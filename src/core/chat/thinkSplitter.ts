// Separates a model's thinking from its answer while streaming. llama-server gives the thinking
// of reasoning models as `reasoning_content` when started with a reasoning format; without one
// (or for templates it does not know) the thinking arrives inline as `<think>…</think>` at the
// start of `content`. Both end up here as two streams: reasoning and content.

const OPEN = '<think>';
const CLOSE = '</think>';

export interface SplitDelta {
  content: string;
  reasoning: string;
}

export class ThinkSplitter {
  private state: 'start' | 'thinking' | 'afterThink' | 'answer' = 'start';
  private pending = '';

  /** Feeds one content delta; returns what can be shown now. A tag split across deltas is held back. */
  push(text: string): SplitDelta {
    const out: SplitDelta = { content: '', reasoning: '' };
    this.pending += text;
    for (;;) {
      if (this.state === 'start') {
        const trimmed = this.pending.replace(/^\s+/, '');
        if (trimmed.length === 0) return out;
        if (trimmed.startsWith(OPEN)) {
          this.pending = trimmed.slice(OPEN.length);
          this.state = 'thinking';
          continue;
        }
        if (OPEN.startsWith(trimmed)) return out; // could still become <think>
        this.state = 'answer';
        continue;
      }
      if (this.state === 'thinking') {
        const end = this.pending.indexOf(CLOSE);
        if (end >= 0) {
          out.reasoning += this.pending.slice(0, end);
          this.pending = this.pending.slice(end + CLOSE.length);
          this.state = 'afterThink';
          continue;
        }
        const keep = partialSuffix(this.pending, CLOSE);
        out.reasoning += this.pending.slice(0, this.pending.length - keep);
        this.pending = this.pending.slice(this.pending.length - keep);
        return out;
      }
      if (this.state === 'afterThink') {
        // The blank lines between the thinking and the answer are layout, not answer.
        this.pending = this.pending.replace(/^\s+/, '');
        if (!this.pending) return out;
        this.state = 'answer';
      }
      out.content += this.pending;
      this.pending = '';
      return out;
    }
  }

  /** Flushes what was held back at the end of the stream. */
  end(): SplitDelta {
    const rest = this.pending;
    this.pending = '';
    if (this.state === 'thinking') return { content: '', reasoning: rest };
    if (this.state === 'afterThink') return { content: '', reasoning: '' };
    return { content: rest, reasoning: '' };
  }
}

/** Length of the longest suffix of `s` that is a proper prefix of `tag`. */
function partialSuffix(s: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, s.length); n > 0; n--) {
    if (s.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}

/** Splits a complete text (e.g. a stored answer) at once. */
export function splitThinking(text: string): SplitDelta {
  const s = new ThinkSplitter();
  const a = s.push(text);
  const b = s.end();
  return { content: a.content + b.content, reasoning: a.reasoning + b.reasoning };
}
