import * as assert from 'assert';
import { ChatDelta } from '../../../src/core/llama/client';
import { ChatBackend, streamAnswer } from '../../../src/core/chat/streamAnswer';

// In-process backends (async generators) standing in for LlamaClient.chatStream; the real
// server is exercised by the E2E test.
function backend(deltas: ChatDelta[], opts: { failAfter?: number; error?: Error } = {}): ChatBackend {
  return {
    async *chatStream(_m, _o, signal) {
      let i = 0;
      for (const d of deltas) {
        if (signal?.aborted) {
          const e = new Error('aborted');
          e.name = 'AbortError';
          throw e;
        }
        if (opts.failAfter !== undefined && i++ >= opts.failAfter) throw opts.error ?? new Error('boom');
        await new Promise((r) => setImmediate(r));
        yield d;
      }
    },
  };
}

describe('chat: streaming one answer', () => {
  it('splits reasoning (both ways) from content and times the stream', async () => {
    let t = 0;
    const seen: string[] = [];
    const r = await streamAnswer(
      backend([{ reasoning_content: 'plan ' }, { content: '<think>more</think>' }, { content: 'Hel' }, { content: 'lo' }]),
      [{ role: 'user', content: 'hi' }],
      new AbortController().signal,
      { onDelta: (d) => seen.push(d.content), now: () => (t += 100), promptTokens: 42 },
    );
    assert.strictEqual(r.status, 'done');
    assert.strictEqual(r.content, 'Hello');
    assert.strictEqual(r.reasoning, 'plan more');
    assert.strictEqual(seen.join(''), 'Hello');
    assert.strictEqual(r.stats.tokens, 4);
    assert.strictEqual(r.stats.promptTokens, 42);
    assert.strictEqual(r.stats.firstTokenMs, 100);
    // 3 tokens after the first over 300 ms = 10 tok/s
    assert.strictEqual(r.stats.tokensPerSecond, 10);
  });

  it('stop keeps what arrived and reports stopped, not an error', async () => {
    const abort = new AbortController();
    const deltas = Array.from({ length: 50 }, (_, i) => ({ content: `w${i} ` }));
    const r = await streamAnswer(backend(deltas), [], abort.signal, {
      onDelta: (d) => {
        if (d.content.startsWith('w4')) abort.abort();
      },
    });
    assert.strictEqual(r.status, 'stopped');
    assert.strictEqual(r.content, 'w0 w1 w2 w3 w4 ');
    assert.strictEqual(r.error, undefined);
  });

  it('a failure mid-stream keeps the text and says what to do', async () => {
    const cause = new TypeError('fetch failed');
    const r = await streamAnswer(backend([{ content: 'a' }, { content: 'b' }], { failAfter: 1, error: cause }), [], new AbortController().signal, {
      onDelta: () => undefined,
    });
    assert.strictEqual(r.status, 'error');
    assert.strictEqual(r.content, 'a');
    assert.match(r.error ?? '', /Lost the connection to llama-server.*regenerate/);
  });
});
