import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { classifyExit, preflight, SupervisorError } from '../../../src/daemon/failures';
import { activitySignature, isBusy, parsePrometheus } from '../../../src/daemon/metrics';
import { skipBecause } from '../../harness/skips';

const onPath = (bin: string) => (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, bin)));

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
    // No execute bit at all: refused for root too (root passes X_OK only when some x bit is set).
    fs.chmodSync(bin, 0o644);
    assert.strictEqual(await code(preflight({ binaryPath: bin, modelPath: model, args: [] })), 'binary-not-executable');
    fs.chmodSync(bin, 0o755);
    assert.strictEqual(await code(preflight({ binaryPath: bin, modelPath: path.join(dir, 'x.gguf'), args: [] })), 'model-not-found');
    fs.writeFileSync(model, 'PK\u0003\u0004 a zip, not a model');
    assert.strictEqual(await code(preflight({ binaryPath: bin, modelPath: model, args: [] })), 'model-load-failed');
  });

  it('as a user without the rights (a non-root child): names a binary it may not run and a model it may not read', function () {
    // Root passes the permission checks a user's sidecar meets, so preflight runs in a child
    // without privileges: as nobody (setpriv) when the tests run as root, else as this user.
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: setpriv and POSIX modes');
    const root = process.getuid!() === 0;
    if (root && !onPath('setpriv')) skipBecause(this, 'setpriv (util-linux) is missing: the tests run as root and need it to drop to an unprivileged user');
    fs.chmodSync(dir, 0o755);
    // Root-owned 0700 / 0600 keep nobody out; for this user's own files, no x bit and no r bit.
    const [binMode, modelMode] = root ? [0o700, 0o600] : [0o600, 0o200];
    const drop = root ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] : [];
    const asUser = (plan: { binaryPath: string; modelPath: string }): { code?: string; message: string } => {
      const script =
        `require(${JSON.stringify(path.resolve(__dirname, '../../../src/daemon/failures'))}).preflight({ ...JSON.parse(process.argv[1]), args: [] })` +
        '.then(() => console.log(JSON.stringify({ message: "ok" })), (e) => console.log(JSON.stringify({ code: e.info && e.info.code, message: e.message })))';
      const argv = [...drop, process.execPath, '-r', 'tsx/cjs', '-e', script, JSON.stringify(plan)];
      const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 30_000, cwd: path.resolve(__dirname, '../../..') });
      assert.strictEqual(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    fs.chmodSync(bin, binMode);
    const notRunnable = asUser({ binaryPath: bin, modelPath: model });
    assert.deepStrictEqual(notRunnable, {
      code: 'binary-not-executable',
      message: `${bin} is not executable: run "chmod +x ${bin}" or pick another llama-server.`,
    });
    fs.chmodSync(bin, 0o755);
    fs.chmodSync(model, modelMode);
    const unreadable = asUser({ binaryPath: bin, modelPath: model });
    assert.deepStrictEqual(unreadable, { code: 'model-not-found', message: `The model file ${model} cannot be read (EACCES): check its permissions.` });
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

  it("classifies exits from llama-server's last lines", () => {
    assert.strictEqual(classifyExit(["srv    start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"]), 'port-in-use');
    assert.strictEqual(classifyExit(['error: invalid argument: --bogus']), 'bad-arguments');
    assert.strictEqual(
      classifyExit(['llama_model_load: error loading model: tensor data is not within file bounds', 'srv    load_model: failed to load model']),
      'model-load-failed',
    );
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
    assert.deepStrictEqual(parsePrometheus(text), {
      prompt_tokens_total: 12,
      tokens_predicted_total: 30,
      requests_processing: 0,
      predicted_tokens_seconds: 84.5,
    });
  });

  it('tells activity from idleness', () => {
    const a = parsePrometheus(text);
    assert.strictEqual(activitySignature(a), activitySignature({ ...a }));
    assert.notStrictEqual(activitySignature(a), activitySignature({ ...a, tokens_predicted_total: 31 }));
    assert.strictEqual(isBusy(a), false);
    assert.strictEqual(isBusy({ ...a, requests_processing: 1 }), true);
  });
});
