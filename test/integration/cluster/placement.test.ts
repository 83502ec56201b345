import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PeerAgent } from '../../../src/cluster/agent/agent';
import { ClusterManager } from '../../../src/cluster/coordinator/clusterManager';
import type { ClusterEvent } from '../../../src/core/protocol';
import { newToken } from '../../../src/cluster/transport/peerHandshake';
import { ensureTinyModel } from '../../fixtures/models';
import { getLlamaBinaries } from '../../harness/llamaBinaries';
import { waitFor } from '../../harness/processes';

// Placement as the sidecar's cluster manager drives it, against a real agent on loopback (no
// root needed): a model that is not on the peer yet fails once, with one event, and is placed
// by itself once the file is there; the placed server answers through the tunnel.

describe('cluster: placement retries', function () {
  this.timeout(180_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-placement-'));
  const modelsDir = path.join(dir, 'models');
  let agent: PeerAgent | undefined;
  let cluster: ClusterManager | undefined;
  const events: ClusterEvent[] = [];
  const token = newToken();

  before(async () => {
    fs.mkdirSync(modelsDir);
    const bins = await getLlamaBinaries();
    await ensureTinyModel();
    agent = new PeerAgent({
      host: '127.0.0.1',
      port: 0,
      token,
      stateDir: path.join(dir, 'agent'),
      rpcServer: bins.rpcServerPath,
      llamaServer: bins.serverPath,
      threads: 1,
      modelsDir,
      log: () => undefined,
    });
    const { port } = await agent.listen();
    cluster = new ClusterManager({ heartbeatMs: 500, deadAfterMs: 3000, retryMinMs: 300, retryMaxMs: 1000, refreshMs: 300, placementRetryMs: 1000 });
    cluster.on('event', (e) => events.push(e));
    cluster.configure({
      peers: [{ name: 'box', host: '127.0.0.1', port, token, transport: 'tunnel' }],
      placements: [{ role: 'fim', peer: 'box', model: 'coder.gguf', args: ['-c', '256', '-t', '1', '--no-repack'] }],
    });
  });

  after(async () => {
    await cluster?.close();
    await agent?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a model not on the peer yet: failed once (one event), placed by itself when the file arrives', async () => {
    const failed = await waitFor('the placement to fail', async () => cluster!.status().placements.find((p) => p.phase === 'failed'), {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    assert.match(failed.error ?? '', /coder\.gguf could not start on box for completions: coder\.gguf is not in the agent's models folder/);
    // Two retry periods pass: it is tried again, fails the same way, and says nothing new.
    await new Promise((r) => setTimeout(r, 2500));
    assert.strictEqual(events.filter((e) => e.kind === 'placement-failed').length, 1, JSON.stringify(events));
    fs.copyFileSync(await ensureTinyModel(), path.join(modelsDir, 'coder.gguf'));
    const ready = await waitFor('the placement to be ready', async () => cluster!.status().placements.find((p) => p.phase === 'ready'), {
      timeoutMs: 90_000,
      intervalMs: 100,
    });
    const res = await fetch(`${ready.url}/infill`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${ready.apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ input_prefix: 'def add(a, b):\n    return ', input_suffix: '\n', n_predict: 3, temperature: 0 }),
    });
    assert.strictEqual(res.status, 200, await res.clone().text());
    assert.ok(
      events.some((e) => e.kind === 'placed' && e.role === 'fim'),
      JSON.stringify(events),
    );
  });
});
