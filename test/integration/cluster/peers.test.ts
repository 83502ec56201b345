import * as assert from 'assert';
import * as net from 'net';
import { TunnelEndpoint } from '../../../src/cluster/coordinator/tunnel';
import { AgentControlClient } from '../../../src/cluster/transport/agentClient';
import { PeerAuthError } from '../../../src/cluster/transport/peerHandshake';
import { probeRpcServer } from '../../../src/cluster/rpc/client';
import { ensureTinyModel } from '../../fixtures/models';
import { RunningLlamaServer, startLlamaServer } from '../../harness/llamaServer';
import { cleanupStaleNamespaces, NetnsLab } from '../../harness/netns';
import { waitFor } from '../../harness/processes';
import { labOrSkip, RunningAgent, startAgent } from './agents';

// Three peers as separate hosts (network namespaces, veth links with 0.2 ms and 2 ms one-way
// delay and some packet loss), each running the real strata-peer agent, which runs the real
// rpc-server on demand. The tiny model is spread over all three through the encrypted tunnels.

describe('cluster: peers in network namespaces', function () {
  this.timeout(300_000);
  let lab: NetnsLab | undefined;
  let agents: RunningAgent[] = [];
  const tunnels: TunnelEndpoint[] = [];
  let server: RunningLlamaServer | undefined;

  before(async function () {
    lab = await labOrSkip(this);
    const stale = await cleanupStaleNamespaces();
    if (stale.length) process.stdout.write(`      (removed namespaces of a crashed run: ${stale.join(', ')})\n`);
    const hosts = await lab.addHosts([{ delayMs: 0.2 }, { delayMs: 2, lossPercent: 0.5 }, { delayMs: 0.2, lossPercent: 0.2 }]);
    agents = await Promise.all(hosts.map((h) => startAgent(h)));
  });

  after(async function () {
    this.timeout(60_000);
    await server?.stop();
    await Promise.all(tunnels.map((t) => t.close()));
    await lab?.cleanup();
    if (lab) {
      const left = (await cleanupStaleNamespaces()).length;
      assert.strictEqual(left, 0);
    }
  });

  const addr = (a: RunningAgent, token = a.token) => ({ host: a.host.addr, port: a.port, token, label: `peer${a.host.index}` });

  it('reports devices, free memory, RPC version and latency per peer', async () => {
    const rtts: number[] = [];
    for (const a of agents) {
      const c = await AgentControlClient.connect(addr(a));
      try {
        let rtt = Infinity;
        for (let i = 0; i < 10; i++) rtt = Math.min(rtt, await c.ping());
        rtts.push(rtt);
        const info = await c.info(true);
        assert.strictEqual(info.rpc.version, '7.0.0');
        assert.strictEqual(info.rpc.mode, 'tunnel');
        assert.strictEqual(info.rpc.host, '127.0.0.1');
        assert.ok(info.devices.length >= 1, 'no devices');
        assert.ok(info.devices[0].freeBytes > 0 && info.devices[0].totalBytes >= info.devices[0].freeBytes);
        assert.strictEqual(info.devices[0].name, 'CPU');
      } finally {
        c.close();
      }
    }
    process.stdout.write(
      `      (control round trips: ${rtts.map((r) => `${r.toFixed(2)} ms`).join(', ')}; links delay ${agents.map((a) => `${a.host.conditions.delayMs} ms by ${a.host.delayBy}`).join(', ')})\n`,
    );
    // 2 ms each way on peer 1: at least 4 ms there (the others depend on how busy this machine is).
    assert.ok(rtts[1] >= 4, `peer1 round trip ${rtts[1]} ms`);
  });

  it("refuses a direct connection to a tunnelled peer's rpc-server (it listens on that host's loopback only)", async () => {
    for (const a of agents) {
      const c = await AgentControlClient.connect(addr(a));
      const rpcPort = (await c.info()).rpc.port!;
      c.close();
      for (const target of new Set([a.host.addr, a.host.bindAddr])) {
        const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
          const s = net.connect({ host: target, port: rpcPort }, () => {
            s.destroy();
            resolve(undefined);
          });
          s.on('error', (e) => resolve(e));
        });
        assert.strictEqual(err?.code, 'ECONNREFUSED', `${target}:${rpcPort} accepted a connection`);
      }
      // The RPC probe says the same in words.
      await assert.rejects(probeRpcServer({ host: a.host.addr, port: rpcPort }), /Nothing listens on/);
    }
  });

  it('refuses a wrong token, and says so', async () => {
    const a = agents[0];
    await assert.rejects(AgentControlClient.connect(addr(a, 'sp1_this-is-not-the-right-token-000')), (e: PeerAuthError) => {
      assert.strictEqual(e.code, 'bad-token');
      assert.match(e.message, /peer "peer0" \(10\.213\.\d+\.2:7399\) refused the token/);
      return true;
    });
    await waitFor(
      'the refusal in the agent log',
      async () => (/auth: refused 10\.213\.\d+\.\d+:\d+: presented a wrong token/.test(a.logText()) ? true : undefined),
      { timeoutMs: 5000 },
    );
  });

  it('refuses a replayed handshake recorded on the wire', async () => {
    const a = agents[2];
    // A recording relay on the path, as an eavesdropper on the LAN would be.
    const recorded: Buffer[] = [];
    const tap = net.createServer((down) => {
      const up = net.connect({ host: a.host.addr, port: a.port });
      down.on('data', (b: Buffer) => {
        recorded.push(Buffer.from(b));
        up.write(b);
      });
      up.on('data', (b: Buffer) => down.write(b));
      up.on('close', () => down.destroy());
      down.on('close', () => up.destroy());
      up.on('error', () => undefined);
      down.on('error', () => undefined);
    });
    await new Promise<void>((r) => tap.listen(0, '127.0.0.1', () => r()));
    try {
      const c = await AgentControlClient.connect({ host: '127.0.0.1', port: (tap.address() as net.AddressInfo).port, token: a.token });
      await c.info();
      c.close();
      await new Promise((r) => setTimeout(r, 200));
      const replay = Buffer.concat(recorded);
      const answer = await new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        const s = net.connect({ host: a.host.addr, port: a.port }, () => s.write(replay));
        s.on('data', (b: Buffer) => parts.push(b));
        s.on('close', () => resolve(Buffer.concat(parts)));
        s.on('error', () => undefined);
      });
      assert.strictEqual(answer.length, 42 + 33, `unexpected answer of ${answer.length} bytes`);
      assert.strictEqual(answer[42], 1, 'the replayed proof was not refused');
      await waitFor('the replay in the agent log', async () => (/replayed an earlier handshake/.test(a.logText()) ? true : undefined), { timeoutMs: 5000 });
    } finally {
      tap.close();
    }
  });

  it('spreads the tiny model over all three peers through the tunnels and answers', async () => {
    for (const a of agents) {
      const t = new TunnelEndpoint(addr(a), { open: 'rpc' });
      await t.listen();
      tunnels.push(t);
    }
    const t0 = Date.now();
    server = await startLlamaServer({
      model: await ensureTinyModel(),
      ctx: 512,
      extraArgs: ['--rpc', tunnels.map((t) => t.endpoint).join(','), '-ngl', '99', '-ts', '2,2,1', '-lv', '4', '-t', '1'],
    });
    const loadMs = Date.now() - t0;
    const log = server.logText();
    for (const t of tunnels) {
      const m = new RegExp(`RPC\\d+\\[${t.endpoint.replace(/\./g, '\\.')}\\] model buffer size =\\s+([\\d.]+) MiB`).exec(log);
      assert.ok(
        m && Number(m[1]) > 0,
        `no model buffer through ${t.label} (${t.endpoint}):\n${log
          .split('\n')
          .filter((l) => /buffer|RPC/.test(l))
          .join('\n')}`,
      );
    }
    assert.match(log, /offloaded 5\/5 layers to GPU/);
    const res = await fetch(`${server.url}/completion`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.apiKey}` },
      body: JSON.stringify({ prompt: 'def fib(n):', n_predict: 16, temperature: 0 }),
    });
    assert.strictEqual(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { timings: { predicted_n: number; predicted_per_second: number } };
    assert.ok(body.timings.predicted_n > 0);
    process.stdout.write(
      `      (load ${loadMs} ms, ${body.timings.predicted_per_second.toFixed(1)} tok/s over 3 tunnelled peers; ${tunnels.map((t) => `${t.label} ${(t.bytes / 1048576).toFixed(1)} MiB`).join(', ')})\n`,
    );
    for (const a of agents) assert.match(a.logText(), /rpc tunnel open/);
  });
});
