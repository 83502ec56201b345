import * as assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { ServerPlan, SidecarStatus } from '../../../src/core/protocol';
import { SidecarClient, SidecarError } from '../../../src/core/daemonClient';
import { ensureTinyModel } from '../../fixtures/models';
import { cleanupStateDir, connectTestSidecar, liveChildren, makeStateDir, tinyPlan, writeCrashingBinary } from '../../harness/sidecar';
import { linuxOnly } from '../../harness/skips';

// Faults a user can meet, each with a message that says what to do, and a daemon that keeps
// serving afterwards. One daemon for the whole file; the last test proves it still works.

async function failure(p: Promise<unknown>): Promise<SidecarError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SidecarError, `not a SidecarError: ${e}`);
    // One readable sentence: no stack, no "undefined", no "[object".
    assert.ok(!/undefined|\[object|\n {4}at /.test(e.message), e.message);
    return e;
  }
  throw new Error('expected the load to fail');
}

describe('sidecar faults', function () {
  this.timeout(240_000);
  linuxOnly("the sidecar daemon's process handling (process groups, /proc)");
  let stateDir: string;
  let plan: ServerPlan;
  let c: SidecarClient;

  before(async () => {
    plan = await tinyPlan(await ensureTinyModel());
    stateDir = makeStateDir();
    c = await connectTestSidecar(stateDir, { daemonConfig: { maxCrashes: 4, restart: { initialMs: 200, maxMs: 1000, factor: 2, jitter: 0 } } });
  });
  after(async () => {
    if (stateDir) await cleanupStateDir(stateDir, [c]);
  });

  it('port in use: refused before starting, naming the port', async () => {
    const srv = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const e = await failure(c.load({ ...plan, port }));
      assert.strictEqual(e.code, 'port-in-use');
      assert.match(e.message, new RegExp(`Port ${port}\\b`));
      assert.strictEqual(c.lastKnownStatus!.server.phase, 'failed');
      assert.deepStrictEqual(liveChildren(stateDir), []);
    } finally {
      srv.close();
    }
  });

  it('missing binary', async () => {
    const e = await failure(c.load({ ...plan, binaryPath: path.join(stateDir, 'no-such-llama-server') }));
    assert.strictEqual(e.code, 'binary-not-found');
    assert.match(e.message, /strata\.server\.path/);
  });

  it('binary that is not executable', async () => {
    const p = path.join(stateDir, 'llama-server-no-x');
    fs.copyFileSync(plan.binaryPath, p);
    fs.chmodSync(p, 0o644);
    const e = await failure(c.load({ ...plan, binaryPath: p }));
    assert.strictEqual(e.code, 'binary-not-executable');
    assert.match(e.message, /chmod \+x/);
  });

  it('corrupt (truncated) model: llama-server fails once, no restarts, the log lines come along', async () => {
    const bad = path.join(stateDir, 'truncated.gguf');
    const fd = fs.openSync(plan.modelPath, 'r');
    const buf = Buffer.alloc(2 * 1024 * 1024);
    fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    fs.writeFileSync(bad, buf);
    const statuses: SidecarStatus[] = [];
    const on = (s: SidecarStatus) => statuses.push(s);
    c.on('status', on);
    const e = await failure(c.load({ ...plan, modelPath: bad }));
    c.off('status', on);
    assert.strictEqual(e.code, 'model-load-failed');
    assert.match(e.message, /truncated\.gguf/);
    assert.ok(e.logTail && e.logTail.length > 0, 'the last log lines explain it');
    assert.ok(!statuses.some((s) => s.server.phase === 'restarting'), 'a corrupt file fails every time: no restarts');
  });

  it('a flag llama-server does not know', async () => {
    const e = await failure(c.load({ ...plan, args: [...plan.args, '--no-such-flag'] }));
    assert.strictEqual(e.code, 'bad-arguments');
    assert.match(e.message, /--no-such-flag/);
  });

  it('crash loop (a binary that exits at once) stops after N tries with its last lines', async () => {
    const fake = writeCrashingBinary(stateDir);
    const phases: string[] = [];
    const on = (s: SidecarStatus) => phases.push(s.server.phase);
    c.on('status', on);
    const t0 = Date.now();
    const e = await failure(c.load({ ...plan, binaryPath: fake }));
    const ms = Date.now() - t0;
    c.off('status', on);
    assert.strictEqual(e.code, 'crash-loop');
    assert.match(e.message, /exited with code 7 4 times in a row/);
    assert.match(e.message, /simulated crash on start/);
    assert.strictEqual(phases.filter((p) => p === 'restarting').length, 3, phases.join(' '));
    // Backoff 200 + 400 + 800 ms between the four tries.
    assert.ok(ms >= 1400, `gave up after ${ms} ms: no backoff?`);
    const st = await c.status();
    assert.strictEqual(st.server.phase, 'failed');
    assert.strictEqual(st.server.error?.code, 'crash-loop');
    console.log(`      (crash loop stopped after ${ms} ms: ${e.message})`);
  });

  it('after all that, the same daemon loads a good plan', async () => {
    const st = await c.load(plan);
    assert.strictEqual(st.phase, 'ready');
    assert.strictEqual(st.error, undefined);
    assert.deepStrictEqual(liveChildren(stateDir), [st.endpoint!.pid]);
  });
});
