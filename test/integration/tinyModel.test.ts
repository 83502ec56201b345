import * as assert from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { GgufFormatError, readGgufHeader } from '../../src/core/models/gguf/reader';
import { QWEN_TOKENS } from '../../src/core/models/synthetic/tokenizers';
import { ensureTinyModel } from '../fixtures/models';
import { RunningLlamaServer, runLlamaServerExpectingFailure, startLlamaServer } from '../harness/llamaServer';

// The tiny generated model on the real llama-server: proves the files we write are models
// llama.cpp serves (FIM infill, streamed chat, auth), and that broken files fail loudly.

/** The first error line llama-server printed, without its timestamp/level prefix. */
function firstErrorLine(log: string): string | undefined {
  const line = log.split('\n').find((l) => /\sE\s/.test(l) && /error|invalid|fail/i.test(l));
  return line?.replace(/^[\d.]+\s+E\s+/, '').trim();
}

describe('tiny model on the real llama-server', function () {
  this.timeout(180_000);
  const apiKey = 'strata-test-key';
  let model: string;
  let server: RunningLlamaServer;

  before(async () => {
    model = await ensureTinyModel();
    server = await startLlamaServer({ model, apiKey, ctx: 1024 });
  });
  after(async () => {
    await server?.stop();
  });

  const authed = (p: string, body?: unknown, key: string | null = apiKey) =>
    fetch(`${server.url}${p}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('is healthy and reports the model', async () => {
    const health = await fetch(`${server.url}/health`);
    assert.strictEqual(health.status, 200);
    assert.deepStrictEqual(await health.json(), { status: 'ok' });
    const props = await authed('/props');
    assert.strictEqual(props.status, 200);
    const p = (await props.json()) as { model_path: string; chat_template: string; default_generation_settings: { n_ctx: number } };
    assert.strictEqual(p.model_path, model);
    assert.match(p.chat_template, /<\|im_start\|>/);
    assert.strictEqual(p.default_generation_settings.n_ctx, 1024);
  });

  it('treats the FIM tokens as single special tokens', async () => {
    const r = await authed('/tokenize', { content: '<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>', parse_special: true });
    assert.strictEqual(r.status, 200);
    const { tokens } = (await r.json()) as { tokens: number[] };
    assert.strictEqual(tokens[0], QWEN_TOKENS.fimPrefix);
    assert.ok(tokens.includes(QWEN_TOKENS.fimSuffix));
    assert.strictEqual(tokens[tokens.length - 1], QWEN_TOKENS.fimMiddle);
  });

  it('/infill returns a completion', async () => {
    const r = await authed('/infill', {
      input_prefix: 'def add(a, b):\n    ',
      input_suffix: '\n\nprint(add(1, 2))\n',
      input_extra: [{ filename: 'util.py', text: 'import math\n' }],
      n_predict: 8,
      temperature: 0,
      cache_prompt: true,
    });
    const text = await r.text();
    assert.strictEqual(r.status, 200, text);
    const body = JSON.parse(text) as { content: string; tokens_predicted: number; tokens_evaluated: number; stop: boolean };
    assert.ok(body.content.length > 0, 'content');
    assert.ok(body.tokens_predicted > 0 && body.tokens_predicted <= 8);
    assert.ok(body.tokens_evaluated > 10, 'prefix, suffix and extra context were evaluated');
  });

  it('streams /v1/chat/completions as SSE ending with [DONE]', async () => {
    const r = await authed('/v1/chat/completions', {
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Say hi.' },
      ],
      stream: true,
      max_tokens: 6,
      temperature: 0,
    });
    assert.strictEqual(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/event-stream/);
    const raw = await r.text();
    const data = raw
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6).trim());
    assert.strictEqual(data[data.length - 1], '[DONE]');
    const chunks = data
      .slice(0, -1)
      .map((d) => JSON.parse(d) as { object: string; choices: Array<{ delta: { content?: string | null }; finish_reason: string | null }> });
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    for (const c of chunks) assert.strictEqual(c.object, 'chat.completion.chunk');
    const content = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.ok(content.length > 0);
    assert.strictEqual(chunks[chunks.length - 1].choices[0]?.finish_reason ?? chunks[chunks.length - 2].choices[0]?.finish_reason, 'length');
  });

  it('refuses requests without the right API key', async () => {
    // Each request on its own connection (agent: false): llama-server closes a kept-alive
    // connection after a streamed answer, and a request landing on that closing socket would fail
    // before any status. No retry: an error here is a failure.
    const fresh = (p: string, body: unknown, key: string | null) =>
      new Promise<number>((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = http.request(
          `${server.url}${p}`,
          {
            method: 'POST',
            agent: false,
            headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...(key ? { Authorization: `Bearer ${key}` } : {}) },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(data);
      });
    for (const key of [null, 'wrong-key']) {
      assert.strictEqual(await fresh('/infill', { input_prefix: 'x', input_suffix: '', n_predict: 1 }, key), 401, `infill with key ${key}`);
      assert.strictEqual(await fresh('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }, key), 401, `chat with key ${key}`);
    }
    // The right key on the same kind of connection is served, so the 401s above are about the key.
    assert.strictEqual(await fresh('/infill', { input_prefix: 'x', input_suffix: '', n_predict: 1 }, apiKey), 200);
  });

  describe('broken model files', () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-broken-'));
    });
    after(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function expectLoadFailure(file: string, llamaSays: RegExp, weSay: RegExp): Promise<void> {
      const r = await runLlamaServerExpectingFailure({ model: file });
      assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code}, signal ${r.signal}`);
      const line = firstErrorLine(r.logText);
      assert.ok(line, `no error line in:\n${r.logText.slice(-2000)}`);
      assert.match(line, llamaSays);
      // and our own reader names the problem before llama-server is ever started
      await assert.rejects(readGgufHeader(file), (e: unknown) => e instanceof GgufFormatError && weSay.test(e.message));
    }

    it('a corrupt file (bad magic) makes llama-server exit with an error', async () => {
      const file = path.join(dir, 'corrupt.gguf');
      const b = fs.readFileSync(model);
      b.write('GGML', 0, 'latin1');
      fs.writeFileSync(file, b);
      await expectLoadFailure(file, /invalid magic characters: 'GGML', expected 'GGUF'/, /^corrupt\.gguf is not a GGUF file \(bad magic\)$/);
    });

    it('a truncated download (data cut short) makes llama-server exit with an error', async () => {
      const file = path.join(dir, 'truncated.gguf');
      const size = fs.statSync(model).size;
      fs.copyFileSync(model, file);
      fs.truncateSync(file, size - 1_000_000);
      await expectLoadFailure(
        file,
        /tensor '.+' data is not within the file bounds, model is corrupted or incomplete/,
        new RegExp(`^truncated\\.gguf is truncated: tensor data ends at \\d+ bytes but the file has ${size - 1_000_000}$`),
      );
    });

    it('a file cut inside its header makes llama-server exit with an error', async () => {
      const file = path.join(dir, 'header-cut.gguf');
      fs.writeFileSync(file, fs.readFileSync(model).subarray(0, 1_000_000));
      await expectLoadFailure(file, /failed to read key-value pairs/, /^header-cut\.gguf is truncated: the header runs past the end of the file/);
    });
  });
});
