import * as assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { classifyExit, preflight, SupervisorError } from '../../../src/sidecar/failures';
import { activitySignature, isBusy, parsePrometheus } from '../../../src/sidecar/metrics';

describe('sidecar failure messages', () => {
  let dir: string;
  let bin: string;
  let model: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-failures-'));
    bin = path.join(dir, 'llama-server');
    fs.writeFileSync(bin, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    model = path.join(dir, 'm.gguf');
    fs.writeFileSync(model, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(64)]));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const code = async (p: Promise<void>) => {
    try {
      await p;
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof SupervisorError);
      assert.ok(!/undefined|\[object/.test(e.message), e.message);
      return e.info.code;
    }
  };

  it('accepts a plan that can start', async () => {
    assert.strictEqual(await code(preflight({ binaryPath: bin, modelPath: model, args: [] })), 'ok');
  });

  it('names a missing or non-executable binary, a missing or non-GGUF model', async function () {
    assert.strictEqual(await code(preflight({ binaryPath: path.join(dir, 'nope'), modelPath: model, args: [] })), 'binary-not-found');
    assert.strictEqual(await code(preflight({ binaryPath: dir, modelPath: model, args: [] })), 'binary-not-found');
    if (process.getuid?.() !== 0) {
      fs.chmodSync(bin, 0o644);
      assert.strictEqual(await code(preflight({ binaryPath: bin, modelPath: model, args: [] })), 'binary-not-executable');
      fs.chmodSync(bin, 0o755);
    }
    assert.strictEqual(await code(preflight({ binaryPath: bin, modelPath: path.join(dir, 'x.gguf'), args: [] })), 'model-not-found');
    fs.writeFileSync(model, 'PK\u0003\u0004 a zip, not a model');
    assert.strictEqual(await code(preflight({ binaryPath: bin, modelPath: model, args: [] })), 'model-load-failed');
  });

  it('names a fixed port that is taken', async () => {
    const srv = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      assert.strictEqual(await code(preflight({ binaryPath: bin, modelPath: model, args: [], port })), 'port-in-use');
    } finally {
      srv.close();
    }
  });

  it('classifies exits from llama-server\'s last lines', () => {
    assert.strictEqual(classifyExit(['srv    start: couldn\'t bind HTTP server socket, hostname: 127.0.0.1, port: 8080']), 'port-in-use');
    assert.strictEqual(classifyExit(['error: invalid argument: --bogus']), 'bad-arguments');
    assert.strictEqual(classifyExit(['llama_model_load: error loading model: tensor data is not within file bounds', 'srv    load_model: failed to load model']), 'model-load-failed');
    assert.strictEqual(classifyExit(['gguf_init_from_file_impl: failed to read tensor info']), 'model-load-failed');
    assert.strictEqual(classifyExit(['slot update_slots: id 0 | task 3 | prompt done']), 'crash');
    assert.strictEqual(classifyExit([]), 'crash');
  });
});

describe('sidecar metrics', () => {
  const text = [
    '# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed',
    '# TYPE llamacpp:prompt_tokens_total counter',
    'llamacpp:prompt_tokens_total 12',
    'llamacpp:tokens_predicted_total 30',
    'llamacpp:requests_processing 0',
    'llamacpp:predicted_tokens_seconds 84.5',
    'garbage line',
    'llamacpp:bad NaNx',
  ].join('\n');

  it('parses Prometheus text without the llamacpp: prefix', () => {
    assert.deepStrictEqual(parsePrometheus(text), { prompt_tokens_total: 12, tokens_predicted_total: 30, requests_processing: 0, predicted_tokens_seconds: 84.5 });
  });

  it('tells activity from idleness', () => {
    const a = parsePrometheus(text);
    assert.strictEqual(activitySignature(a), activitySignature({ ...a }));
    assert.notStrictEqual(activitySignature(a), activitySignature({ ...a, tokens_predicted_total: 31 }));
    assert.strictEqual(isBusy(a), false);
    assert.strictEqual(isBusy({ ...a, requests_processing: 1 }), true);
  });
});
