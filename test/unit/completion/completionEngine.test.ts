import * as assert from 'assert';
import { CompletionEngine, CompletionSettings, DEFAULT_COMPLETION_SETTINGS, REUSE_ALL, REUSE_NONE } from '../../../src/core/completion/completionEngine';
import { TextDocumentLines } from '../../../src/core/completion/document';
import { buildFimContext } from '../../../src/core/completion/fimContext';
import { InfillRequest, InfillResponse, LlamaClient, LlamaHttpError, LlamaProtocolError, ServerProps } from '../../../src/core/llama/client';
import { ConnectionFileError } from '../../../src/core/llama/serverConnection';

// The engine's decisions (when to ask, what to send, when not to) against a scripted client.
// Everything that needs the real llama-server is in test/integration/completion*.test.ts.

type Answer = (req: InfillRequest, signal?: AbortSignal) => Promise<InfillResponse>;

class ScriptedClient {
  readonly requests: InfillRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  props: () => Promise<ServerProps> = async () => ({ model_path: '/m/coder.gguf', default_generation_settings: { n_ctx: 16384 } });
  answer: Answer = async () => ({ content: 'x * 2', timings: { prompt_n: 100, cache_n: 900, prompt_ms: 1, predicted_n: 4, predicted_ms: 1 } });

  asClient(): LlamaClient {
    const infill = async (req: InfillRequest, signal?: AbortSignal) => {
      // The FIM probe (empty prompt) is not counted as a completion request.
      if (req.input_prefix === '' && req.prompt === '' && req.n_predict === 0) return { content: '' };
      this.requests.push(req);
      // In flight until answered or aborted (an aborted fetch closes its connection at once).
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      let done = false;
      const finish = () => {
        if (!done) {
          done = true;
          this.inFlight--;
        }
      };
      signal?.addEventListener('abort', finish, { once: true });
      try {
        return await this.answer(req, signal);
      } finally {
        finish();
      }
    };
    return { props: () => this.props(), infill, infillStream: infill } as unknown as LlamaClient;
  }
}

function slowAnswer(ms: number, content = 'x * 2'): Answer {
  return (_req, signal) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve({ content }), ms);
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        },
        { once: true },
      );
    });
}

const settings = (over: Partial<CompletionSettings> = {}): CompletionSettings => ({ ...DEFAULT_COMPLETION_SETTINGS, ...over });

function setup(over: Partial<CompletionSettings> = {}) {
  const sc = new ScriptedClient();
  const client = sc.asClient();
  const engine = new CompletionEngine(
    () => client,
    () => settings(over),
  );
  const doc = new TextDocumentLines('def f(x):\n    return \n', 'file:///a.py', 'python');
  return { sc, engine, doc, at: { line: 1, character: 11 } };
}

describe('CompletionEngine', () => {
  it('sends a cache-friendly /infill request', async () => {
    const { sc, engine, doc, at } = setup();
    const r = await engine.complete(doc, at);
    assert.strictEqual(r?.text, 'x * 2');
    assert.strictEqual(r?.source, 'server');
    const req = sc.requests[0];
    assert.strictEqual(req.input_prefix, 'def f(x):\n');
    assert.strictEqual(req.prompt, '    return ');
    assert.strictEqual(req.input_suffix, '\n');
    assert.strictEqual(req.cache_prompt, true);
    assert.strictEqual(req.n_cache_reuse, 256);
    assert.strictEqual(req.n_predict, DEFAULT_COMPLETION_SETTINGS.maxTokens);
    assert.ok(req.t_max_predict_ms && req.t_max_prompt_ms);
    assert.deepStrictEqual(req.samplers, ['top_k', 'top_p', 'temperature']);
    assert.strictEqual(req.temperature, 0);
    assert.ok(Array.isArray(req.input_extra));
    assert.deepStrictEqual(engine.status.snapshot.last, {
      latencyMs: engine.status.snapshot.last!.latencyMs,
      promptTokens: 100,
      cachedTokens: 900,
      source: 'server',
    });
  });

  it('answers a repeated context from its LRU, and typing through the suggestion from memory', async () => {
    const { sc, engine, doc, at } = setup();
    await engine.complete(doc, at);
    assert.strictEqual((await engine.complete(doc, at))?.source, 'cache');
    let cur = at;
    for (const ch of 'x * ') {
      cur = doc.insert(cur, ch);
      const r = await engine.complete(doc, cur);
      assert.strictEqual(r?.source, 'typed-through');
    }
    assert.strictEqual((await engine.complete(doc, cur))?.text, '2');
    assert.strictEqual(sc.requests.length, 1);
    assert.strictEqual(engine.stats.typedThrough, 5);
  });

  it('keeps at most one request in flight: a new context aborts the old request', async () => {
    const { sc, engine, doc, at } = setup();
    sc.answer = slowAnswer(50);
    const first = engine.complete(doc, at);
    await new Promise((r) => setTimeout(r, 5));
    const cur = doc.insert(at, 'y');
    const second = engine.complete(doc, cur);
    assert.strictEqual(await first, undefined);
    assert.strictEqual((await second)?.text, 'x * 2');
    assert.strictEqual(sc.maxInFlight, 1);
    assert.strictEqual(engine.stats.aborted, 1);
  });

  it('a request for the context in flight joins it instead of asking twice', async () => {
    const { sc, engine, doc, at } = setup();
    sc.answer = slowAnswer(30);
    const [a, b] = await Promise.all([engine.complete(doc, at), engine.complete(doc, at)]);
    assert.strictEqual(a?.text, 'x * 2');
    assert.strictEqual(b?.source, 'joined');
    assert.strictEqual(sc.requests.length, 1);
  });

  it("aborts the HTTP request when the caller's signal fires (the server slot frees)", async () => {
    const { sc, engine, doc, at } = setup();
    let aborted = false;
    sc.answer = (req, signal) => {
      signal?.addEventListener('abort', () => {
        aborted = true;
      });
      return slowAnswer(1000)(req, signal);
    };
    const ac = new AbortController();
    const p = engine.complete(doc, at, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    assert.strictEqual(await p, undefined);
    assert.strictEqual(aborted, true);
  });

  it('does not ask when the debounce gives up', async () => {
    const { sc, engine, doc, at } = setup();
    assert.strictEqual(await engine.complete(doc, at, { beforeRequest: async () => false }), undefined);
    assert.strictEqual(sc.requests.length, 0);
  });

  it('turns completions off, with one clear state, for a model without FIM tokens', async () => {
    const sc = new ScriptedClient();
    let probes = 0;
    const client = {
      props: () => sc.props(),
      infill: async () => {
        probes++;
        throw new LlamaHttpError(
          'llama-server /infill failed (501): Infill is not supported by this model: prefix token is missing.',
          501,
          '{"error":{"message":"Infill is not supported by this model"}}',
        );
      },
      infillStream: async () => {
        probes++;
        throw new Error('not reached: the probe turned completions off');
      },
    } as unknown as LlamaClient;
    const engine = new CompletionEngine(
      () => client,
      () => settings(),
    );
    const doc = new TextDocumentLines('x = ', 'u', 'python');
    const states = new Set<string>();
    engine.status.onChange((s) => states.add(s.state));
    for (let i = 0; i < 20; i++) assert.strictEqual(await engine.complete(doc, { line: 0, character: 4 }), undefined);
    assert.strictEqual(probes, 1, 'the model is probed once, not on every keystroke');
    assert.strictEqual(engine.status.snapshot.state, 'no-fim');
    assert.match(engine.status.snapshot.message, /fill-in-the-middle/);
    assert.deepStrictEqual([...states], ['no-fim']);
  });

  it('backs off while the server is down, loading or answering garbage (no request per keystroke)', async () => {
    for (const [error, state] of [
      [new ConnectionFileError('No Strata server is running'), 'down'],
      [new LlamaHttpError('loading', 503, '{"error":{"message":"Loading model"}}'), 'loading'],
      [new LlamaProtocolError('llama-server answered /infill with something that is not JSON'), 'error'],
      [Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }), 'down'],
    ] as const) {
      const sc = new ScriptedClient();
      let calls = 0;
      const isConn = error instanceof ConnectionFileError;
      const fail = async (req: InfillRequest) => {
        if (req.n_predict !== 0) calls++;
        throw error;
      };
      const client = { props: () => sc.props(), infill: fail, infillStream: fail } as unknown as LlamaClient;
      if (!isConn) sc.props = async () => ({ default_generation_settings: { n_ctx: 8192 } });
      const engine = new CompletionEngine(
        () => {
          if (isConn) {
            calls++;
            throw error;
          }
          return client;
        },
        () => settings(),
      );
      const doc = new TextDocumentLines('x = ', 'u', 'python');
      for (let i = 0; i < 30; i++) await engine.complete(doc, { line: 0, character: 4 });
      assert.ok(calls <= 2, `${state}: ${calls} attempts in 30 keystrokes`);
      assert.strictEqual(engine.status.snapshot.state, state, `${(error as Error).message}`);
      assert.ok(engine.status.snapshot.message.length > 10);
    }
  });

  it('sends extra context from the ring within the server context, and warms the cache in idle time', async () => {
    const { sc, engine, doc, at } = setup();
    await engine.complete(doc, at);
    assert.deepStrictEqual(sc.requests[0].input_extra, []);
    engine.extra.pick(
      'other.py',
      Array.from({ length: 30 }, (_, i) => `value_${i} = ${i} * 3`),
      'open',
    );
    assert.strictEqual(await engine.idle(doc, at), true);
    const warm = sc.requests[1];
    assert.strictEqual(warm.n_predict, 0);
    assert.strictEqual(warm.input_extra?.[0].filename, 'other.py');
    assert.strictEqual(await engine.idle(doc, at), false, 'nothing changed since the last warm-up');
    const cur = doc.insert(at, 'q');
    await engine.complete(doc, cur);
    assert.deepStrictEqual(sc.requests[2].input_extra, warm.input_extra);
  });

  it('prefetches the next completion after an accept; the provider call then joins or hits it', async () => {
    const { sc, engine, doc, at } = setup();
    await engine.complete(doc, at);
    const cur = doc.insert(at, 'x * 2');
    sc.answer = slowAnswer(20, ' + 1');
    engine.accepted(doc, cur);
    const r = await engine.complete(doc, cur);
    assert.ok(r && (r.source === 'joined' || r.source === 'cache'), r?.source);
    assert.strictEqual(sc.requests.length, 2);
  });

  it('the provider call after an accept joins the prefetch at once, without waiting for the debounce', async () => {
    const { sc, engine, doc, at } = setup();
    await engine.complete(doc, at);
    const cur = doc.insert(at, 'x * 2');
    sc.answer = slowAnswer(50, ' + 1');
    engine.accepted(doc, cur);
    // VS Code runs the accept command, then asks the provider about the edited document: later.
    await new Promise((res) => setTimeout(res, 5));
    let debounced = false;
    const t0 = Date.now();
    const r = await engine.complete(doc, cur, {
      beforeRequest: async () => {
        debounced = true;
        await new Promise((res) => setTimeout(res, 1000));
        return true;
      },
    });
    assert.strictEqual(r?.source, 'joined');
    assert.strictEqual(r?.text, ' + 1');
    assert.strictEqual(debounced, false, 'waited for the debounce although the prefetch was in flight for this context');
    assert.ok(Date.now() - t0 < 500, `answered after ${Date.now() - t0} ms`);
    assert.strictEqual(sc.requests.length, 2);
  });

  it('an idle warm-up never cancels the completion it races with (both waiting for the first model check)', async () => {
    const { sc, engine, doc, at } = setup();
    sc.answer = slowAnswer(20);
    // The user stopped typing: the debounce and the idle tick end together.
    const [r] = await Promise.all([engine.complete(doc, at), engine.idle(doc, at)]);
    assert.strictEqual(r?.text, 'x * 2');
    assert.strictEqual(engine.stats.aborted, 0);
  });

  it('with every reuse feature off, asks the server every time and leaves its cache settings at their defaults', async () => {
    const { sc, engine, doc, at } = setup({ reuse: REUSE_NONE });
    await engine.complete(doc, at);
    await engine.complete(doc, at);
    const cur = doc.insert(at, 'x');
    await engine.complete(doc, cur);
    assert.strictEqual(sc.requests.length, 3);
    // A client as users meet it: llama-server's defaults (cache_prompt on), not a cache turned off.
    assert.ok(!('cache_prompt' in sc.requests[0]), `cache_prompt sent: ${sc.requests[0].cache_prompt}`);
    assert.ok(!('n_cache_reuse' in sc.requests[0]), `n_cache_reuse sent: ${sc.requests[0].n_cache_reuse}`);
    void REUSE_ALL;
  });

  it('skips a minified line without asking, and says why', async () => {
    const { sc, engine } = setup();
    const doc = new TextDocumentLines('x'.repeat(200_000), 'u', 'javascript');
    assert.strictEqual(await engine.complete(doc, { line: 0, character: 100_000 }), undefined);
    assert.strictEqual(sc.requests.length, 0);
    assert.match(engine.status.snapshot.skipped ?? '', /200,000 characters/);
  });

  it('builds the FIM context once per request, also for a line it refuses (not again after the debounce)', async () => {
    const { sc, engine } = setup();
    const doc = new TextDocumentLines('x'.repeat(200_000), 'u', 'javascript');
    const at = { line: 0, character: 100_000 };
    let reads = 0;
    const counted = Object.assign(Object.create(doc) as TextDocumentLines, {
      lineAt: (i: number) => {
        reads++;
        return doc.lineAt(i);
      },
    });
    assert.strictEqual(buildFimContext(counted, at, { ...DEFAULT_COMPLETION_SETTINGS.fim, stableWindow: true }).ok, false);
    const oneBuild = reads;
    reads = 0;
    assert.strictEqual(await engine.complete(counted, at, { beforeRequest: async () => true }), undefined);
    assert.strictEqual(reads, oneBuild, 'the document was read for more than one context build');
    assert.strictEqual(sc.requests.length, 0);
    assert.match(engine.status.snapshot.skipped ?? '', /200,000 characters/);
  });

  it('records the main-thread time of each completion', async () => {
    const { engine, doc, at } = setup();
    await engine.complete(doc, at);
    await engine.complete(doc, at);
    assert.strictEqual(engine.cpuSamples.length, 2);
    assert.ok(engine.cpuSamples.every((ms) => ms >= 0 && ms < 50));
  });
});
