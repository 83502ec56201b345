// FAKE SERVER: this file's HTTP server injects faults the real llama-server cannot be made to produce on demand (a model without FIM tokens, a server stuck loading, garbage, endless or hanging answers); everything else runs against the real one (completionServer.test.ts).
import * as assert from 'assert';
import * as http from 'http';
import { AddressInfo } from 'net';
import { CompletionEngine, CompletionSettings, DEFAULT_COMPLETION_SETTINGS } from '../../src/core/completion/completionEngine';
import { TextDocumentLines } from '../../src/core/completion/document';
import { LlamaClient } from '../../src/core/llama/client';
import { ConnectionFileError } from '../../src/core/llama/serverConnection';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

interface Fake {
  url: string;
  /** /infill requests received, the FIM probe (empty prompt) included. */
  infills: number;
  handler: Handler;
  close(): Promise<void>;
}

async function fakeServer(handler: Handler): Promise<Fake> {
  const sockets = new Set<import('net').Socket>();
  const fake: Fake = { url: '', infills: 0, handler, close: async () => undefined };
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      if (req.url === '/props') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ model_path: '/models/chat-only.gguf', default_generation_settings: { n_ctx: 8192 }, total_slots: 1 }));
        return;
      }
      if (req.url === '/infill') fake.infills++;
      fake.handler(req, res, body);
    });
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      srv.close(() => r());
    });
  return fake;
}

const doc = () => new TextDocumentLines('def f(x):\n    return \n', 'file:///a.py', 'python');

/** Types `n` characters with `gapMs` between them, asking for a completion after each. */
async function typeBurst(engine: CompletionEngine, n: number, gapMs: number): Promise<void> {
  const d = doc();
  let cur = { line: 1, character: 11 };
  for (let i = 0; i < n; i++) {
    cur = d.insert(cur, 'abcdefghij'[i % 10]);
    await engine.complete(d, cur);
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
}

describe('completions when the server misbehaves', function () {
  this.timeout(60_000);
  let fake: Fake | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  const engineFor = (url: string, over: Partial<CompletionSettings> = {}) => {
    const client = new LlamaClient({ url, apiKey: 'k' });
    return new CompletionEngine(
      () => client,
      () => ({ ...DEFAULT_COMPLETION_SETTINGS, ...over }),
    );
  };

  it('a model without FIM tokens: one probe, one clear state, completions off', async () => {
    fake = await fakeServer((_req, res) => {
      res.writeHead(501, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            code: 501,
            message: 'Infill is not supported by this model: prefix token is missing. suffix token is missing. middle token is missing. ',
            type: 'not_supported_error',
          },
        }),
      );
    });
    const engine = engineFor(fake.url);
    const states: string[] = [];
    engine.status.onChange((s) => states.push(s.state));
    await typeBurst(engine, 40, 0);
    assert.strictEqual(fake.infills, 1);
    assert.deepStrictEqual(states, ['no-fim']);
    assert.match(engine.status.snapshot.message, /no fill-in-the-middle tokens.*coder model/);
  });

  it('a server loading its model (503): state "loading", at most a request per back-off, ready when it is', async () => {
    let loading = true;
    fake = await fakeServer((_req, res, body) => {
      if (loading) {
        res.writeHead(503, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 503, message: 'Loading model', type: 'unavailable_error' } }));
        return;
      }
      const stream = JSON.parse(body).stream;
      res.writeHead(200, { 'Content-Type': stream ? 'text/event-stream' : 'application/json' });
      const final = { content: 'x + 1', stop: true, timings: { prompt_n: 10, cache_n: 0, prompt_ms: 1, predicted_n: 3, predicted_ms: 1 } };
      res.end(stream ? `data: ${JSON.stringify(final)}\n\n` : JSON.stringify(final));
    });
    const engine = engineFor(fake.url);
    await typeBurst(engine, 30, 20); // ~0.6 s of typing
    assert.strictEqual(engine.status.snapshot.state, 'loading');
    assert.ok(fake.infills <= 2, `${fake.infills} requests while loading`);
    loading = false;
    await new Promise((r) => setTimeout(r, 2100)); // the back-off passes
    await typeBurst(engine, 1, 0);
    assert.strictEqual(engine.status.snapshot.state, 'ready');
  });

  it('garbage (HTML, not JSON): one error state, back-off, no request per keystroke', async () => {
    fake = await fakeServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>It works!</body></html>');
    });
    const engine = engineFor(fake.url);
    const states: string[] = [];
    engine.status.onChange((s) => states.push(s.state));
    await typeBurst(engine, 50, 10);
    assert.ok(fake.infills <= 2, `${fake.infills} requests`);
    assert.deepStrictEqual(states, ['error']);
    assert.match(engine.status.snapshot.message, /not JSON|connection file points at llama-server/);
  });

  it('an endless answer is cut at 1 MB, in bounded time', async () => {
    fake = await fakeServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const piece = `data: ${JSON.stringify({ content: 'x'.repeat(1000), stop: false })}\n\n`;
      const t = setInterval(() => {
        for (let i = 0; i < 50; i++) res.write(piece);
      }, 1);
      req.socket.on('close', () => clearInterval(t));
    });
    const engine = engineFor(fake.url);
    // The FIM probe reads the answer whole: it is cut too.
    const t0 = Date.now();
    await typeBurst(engine, 1, 0);
    assert.ok(Date.now() - t0 < 10_000);
    assert.strictEqual(engine.status.snapshot.state, 'error');
    assert.match(engine.status.snapshot.message, /larger than|more than/);
  });

  it('a server that never answers: the request times out; one request at a time', async () => {
    fake = await fakeServer(() => {
      /* never answers */
    });
    const engine = engineFor(fake.url, { requestTimeoutMs: 300 });
    const t0 = Date.now();
    await typeBurst(engine, 5, 0);
    assert.ok(Date.now() - t0 < 5000);
    assert.strictEqual(engine.status.snapshot.state, 'error');
    assert.ok(engine.stats.maxInFlight <= 1);
  });

  it('no server (connection refused, or no connection file): state "down", a retry every few seconds at most', async () => {
    const refused = engineFor('http://127.0.0.1:9');
    await typeBurst(refused, 30, 0);
    assert.strictEqual(refused.status.snapshot.state, 'down');
    assert.match(refused.status.snapshot.message, /not running/);
    let reads = 0;
    const noFile = new CompletionEngine(
      () => {
        reads++;
        throw new ConnectionFileError(
          'No Strata server is running (/x/server.json does not exist): run "Strata: Start Server", or start the server that writes this file.',
        );
      },
      () => DEFAULT_COMPLETION_SETTINGS,
    );
    await typeBurst(noFile, 30, 0);
    assert.strictEqual(noFile.status.snapshot.state, 'down');
    assert.strictEqual(reads, 1);
  });
});
