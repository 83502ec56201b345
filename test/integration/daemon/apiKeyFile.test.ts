import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { LlamaClient } from '../../../src/core/llama/client';
import { ServerPlan } from '../../../src/core/protocol';
import { SidecarClient } from '../../../src/core/daemonClient';
import { isPidAlive } from '../../../src/core/daemonClient/processInfo';
import { ensureTinyModel } from '../../fixtures/models';
import { allCmdlines, cmdlinesContaining, flagValue } from '../../harness/procCmdlines';
import { cleanupStateDir, connectTestSidecar, makeStateDir, tinyPlan, waitUntil } from '../../harness/sidecar';

// The sidecar's llama-server gets its API key from a file, not its command line (issue 13 item 4):
// `ps` shows every process's argv to every user of the machine, and the key guards the model
// server that the windows (and anyone who reads server.json) talk to.

describe('sidecar: the llama-server API key stays off the command line', function () {
  this.timeout(240_000);
  if (process.platform !== 'linux') return;
  let plan: ServerPlan;
  let stateDir: string;
  const clients: SidecarClient[] = [];

  before(async () => {
    plan = await tinyPlan(await ensureTinyModel());
    stateDir = makeStateDir();
  });
  after(async () => {
    await cleanupStateDir(stateDir, clients.splice(0));
  });

  it("is in a 0600 file in a 0700 folder, on no process's command line, and gone once the server stops", async () => {
    const c = await connectTestSidecar(stateDir);
    clients.push(c);
    const ep = (await c.load(plan)).endpoint!;

    assert.deepStrictEqual(
      cmdlinesContaining(ep.apiKey).map((p) => `${p.pid}: ${p.argv.join(' ')}`),
      [],
    );
    const server = allCmdlines().find((p) => p.pid === ep.pid);
    assert.ok(server, `llama-server pid ${ep.pid} is not running`);
    const keyFile = flagValue(server, '--api-key-file');
    assert.ok(keyFile, `llama-server runs without --api-key-file: ${server.argv.join(' ')}`);
    assert.strictEqual(fs.readFileSync(keyFile, 'utf8'), `${ep.apiKey}\n`);
    assert.strictEqual(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.strictEqual(fs.statSync(path.dirname(keyFile)).mode & 0o777, 0o700);

    // The key in the file is the one it enforces.
    const r = await new LlamaClient({ url: ep.url, apiKey: ep.apiKey }).infill({ input_prefix: 'def add(a, b):\n    ', input_suffix: '\n', n_predict: 2 });
    assert.strictEqual(typeof r.content, 'string');
    const noKey = await fetch(`${ep.url}/completion`, { method: 'POST', body: '{"prompt":"x","n_predict":1}' });
    assert.strictEqual(noKey.status, 401);

    await c.unload();
    await waitUntil('the key file to be removed', () => !fs.existsSync(path.dirname(keyFile)), 10_000);
  });

  it('a daemon killed with SIGKILL cannot remove its key file: the next start does', async () => {
    const c = await connectTestSidecar(stateDir);
    clients.push(c);
    const ep = (await c.load(plan)).endpoint!;
    const keyDir = path.dirname(
      flagValue(
        allCmdlines().find((p) => p.pid === ep.pid)!,
        '--api-key-file',
      )!,
    );
    const daemonPid = c.lastKnownStatus!.daemon.pid;
    process.kill(daemonPid, 'SIGKILL');
    await waitUntil('the daemon and its llama-server to die', () => !isPidAlive(daemonPid) && !isPidAlive(ep.pid), 10_000);
    assert.ok(fs.existsSync(keyDir), 'nothing was left to clean up');

    const next = await connectTestSidecar(stateDir);
    clients.push(next);
    await next.load(plan);
    assert.ok(!fs.existsSync(keyDir), `${keyDir} outlived the daemon that wrote it`);
  });
});
