import * as assert from 'assert';
import { ensureTinyModel } from '../fixtures/models';
import { RunningLlamaServer, startLlamaServer } from '../harness/llamaServer';
import { RunningRpcServer, startRpcServer } from '../harness/rpcServer';

// llama-server with two real rpc-server peers on loopback: the model's layers must actually
// land on the peers (read from llama.cpp's own load log), and generation must work through them.

describe('llama-server with two rpc-server peers', function () {
  this.timeout(300_000);
  let peers: RunningRpcServer[] = [];
  let server: RunningLlamaServer | undefined;

  before(async () => {
    const model = await ensureTinyModel();
    peers = [await startRpcServer(), await startRpcServer()];
    server = await startLlamaServer({
      model,
      // -lv 4: this llama.cpp prints the per-device buffer lines only at debug verbosity.
      extraArgs: ['--rpc', peers.map((p) => p.endpoint).join(','), '-ngl', '99', '-lv', '4'],
    });
  });

  after(async () => {
    await server?.stop();
    await Promise.all(peers.map((p) => p.stop()));
  });

  it('puts model buffers on both peers', () => {
    const log = server!.logText();
    for (const p of peers) {
      const re = new RegExp(`RPC\\d*\\[${p.endpoint.replace(/\./g, '\\.')}\\] model buffer size =\\s+([\\d.]+) MiB`);
      const m = re.exec(log);
      assert.ok(
        m,
        `no model buffer on peer ${p.endpoint} in the load log:\n${log
          .split('\n')
          .filter((l) => /buffer|offload|RPC/.test(l))
          .join('\n')}`,
      );
      assert.ok(Number(m[1]) > 0, `peer ${p.endpoint} holds ${m[1]} MiB`);
    }
    const off = /offloaded (\d+)\/(\d+) layers to GPU/.exec(log);
    assert.ok(off, 'no "offloaded N/M layers" line');
    assert.strictEqual(off[1], off[2], `only ${off[1]} of ${off[2]} layers went to the peers`);
  });

  it('generates through the peers (/infill)', async () => {
    const res = await fetch(`${server!.url}/infill`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server!.apiKey}` },
      body: JSON.stringify({ input_prefix: 'def add(a, b):\n    return ', input_suffix: '\n', n_predict: 8, temperature: 0 }),
    });
    assert.strictEqual(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { content: string; timings: { predicted_n: number } };
    assert.ok(body.timings.predicted_n > 0, 'no tokens generated');
  });
});
