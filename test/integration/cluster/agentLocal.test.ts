import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PeerAgent } from '../../../src/cluster/agent/agent';
import { TunnelEndpoint } from '../../../src/cluster/coordinator/tunnel';
import { AgentControlClient } from '../../../src/cluster/transport/agentClient';
import { newToken } from '../../../src/cluster/transport/peerHandshake';
import { ensureTinyModel, testModelsDir } from '../../fixtures/models';
import { getLlamaBinaries } from '../../harness/llamaBinaries';
import { startLlamaServer } from '../../harness/llamaServer';
import { waitFor } from '../../harness/processes';

// The agent in this process on loopback (no root needed): rpc-server on demand and its idle
// stop, the tensor cache, placement mode (a whole llama-server for a role, reached through the
// tunnel) and its limits.

describe('cluster: peer agent on loopback', function () {
  this.timeout(300_000);
  let agent: PeerAgent | undefined;
  let port = 0;
  const token = newToken();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-agent-local-'));
  const cacheDir = path.join(dir, 'tensor-cache');
  const logs: string[] = [];

  before(async () => {
    const bins = await getLlamaBinaries();
    await ensureTinyModel();
    agent = new PeerAgent({
      host: '127.0.0.1',
      port: 0,
      token,
      stateDir: dir,
      rpcServer: bins.rpcServerPath,
      llamaServer: bins.serverPath,
      threads: 1,
      cacheDir,
      idleStopMs: 1500,
      modelsDir: testModelsDir(),
      log: (m) => logs.push(m),
    });
    port = (await agent.listen()).port;
  });

  after(async () => {
    await agent?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const addr = () => ({ host: '127.0.0.1', port, token, label: 'local' });

  it('starts rpc-server on demand, keeps it while leased, and stops it when idle', async () => {
    const c = await AgentControlClient.connect(addr());
    const st = await c.request('rpc.start', { mode: 'tunnel' });
    assert.ok(st.running && st.host === '127.0.0.1');
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(agent!.rpc.state().running, 'stopped although a control channel holds it');
    c.close();
    await waitFor('idle stop', async () => (agent!.rpc.state().running ? undefined : true), { timeoutMs: 10_000 });
    assert.ok(
      logs.some((l) => /stopping rpc-server pid \d+ \(idle for 2 s\)/.test(l)),
      logs.join('\n'),
    );
  });

  it('refuses direct mode unless the owner allowed it', async () => {
    const c = await AgentControlClient.connect(addr());
    try {
      await assert.rejects(c.request('rpc.start', { mode: 'direct' }), /does not allow direct mode: restart it with --allow-direct --direct-host/);
    } finally {
      c.close();
    }
  });

  it('fills the tensor cache, so that a reload sends hashes instead of the big tensors', async () => {
    const t = new TunnelEndpoint(addr(), { open: 'rpc' });
    await t.listen();
    try {
      const model = await ensureTinyModel();
      const first = await startLlamaServer({ model, ctx: 256, extraArgs: ['--rpc', t.endpoint, '-ngl', '99', '-t', '1'] });
      await first.stop();
      const firstBytes = t.bytes;
      const cached = fs.readdirSync(path.join(cacheDir, 'rpc'));
      assert.ok(cached.length >= 1, 'nothing in the tensor cache');
      const second = await startLlamaServer({ model, ctx: 256, extraArgs: ['--rpc', t.endpoint, '-ngl', '99', '-t', '1'] });
      await second.stop();
      const secondBytes = t.bytes - firstBytes;
      process.stdout.write(
        `      (through the tunnel: first load ${(firstBytes / 1048576).toFixed(1)} MiB, cached reload ${(secondBytes / 1048576).toFixed(1)} MiB)\n`,
      );
      assert.ok(secondBytes < firstBytes / 2, `reload sent ${secondBytes} of ${firstBytes} bytes`);
    } finally {
      await t.close();
    }
  });

  it('placement: runs a whole llama-server for a role and serves it through the tunnel', async () => {
    const model = path.basename(await ensureTinyModel());
    const c = await AgentControlClient.connect(addr());
    try {
      await assert.rejects(c.request('server.start', { role: 'fim', model: '../../etc/passwd' }), /outside the agent's models folder/);
      await assert.rejects(
        c.request('server.start', { role: 'fim', model, args: ['--log-file', '/tmp/x'] }),
        /flag "--log-file" is not allowed in placement mode/,
      );
      const st = await c.request('server.start', { role: 'fim', model, args: ['-c', '256', '-t', '1', '--no-repack'] }, 120_000);
      assert.strictEqual(st.phase, 'ready');
      const t = new TunnelEndpoint(addr(), { open: 'server', role: 'fim' });
      await t.listen();
      try {
        const res = await fetch(`http://${t.endpoint}/infill`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${st.apiKey}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ input_prefix: 'def add(a, b):\n    return ', input_suffix: '\n', n_predict: 4, temperature: 0 }),
        });
        assert.strictEqual(res.status, 200, await res.clone().text());
        const noKey = await fetch(`http://${t.endpoint}/completion`, { method: 'POST', body: '{"prompt":"x","n_predict":1}' });
        assert.strictEqual(noKey.status, 401);
      } finally {
        await t.close();
      }
      // The same model and flags again joins it; other flags restart it (a new key says so).
      const same = await c.request('server.start', { role: 'fim', model, args: ['-c', '256', '-t', '1', '--no-repack'] }, 120_000);
      assert.strictEqual(same.apiKey, st.apiKey, 'the same request must join the running server');
      const bigger = await c.request('server.start', { role: 'fim', model, args: ['-c', '512', '-t', '1', '--no-repack'] }, 120_000);
      assert.strictEqual(bigger.phase, 'ready');
      assert.notStrictEqual(bigger.apiKey, st.apiKey, 'other flags must restart the placed server');
      assert.strictEqual((await c.request('server.stop', { role: 'fim' })).phase, 'stopped');
      // The placed servers' keys are in no log file the agent wrote.
      const logs = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.log'));
      assert.ok(
        logs.some((e) => e.name === 'llama-server-fim.log'),
        logs.map((e) => e.name).join(', '),
      );
      for (const e of logs) {
        const text = fs.readFileSync(path.join(e.parentPath ?? e.path, e.name), 'utf8');
        for (const key of [st.apiKey!, bigger.apiKey!]) assert.ok(!text.includes(key), `${e.name} holds a placed server's API key`);
      }
    } finally {
      c.close();
    }
  });
});
