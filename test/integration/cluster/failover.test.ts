import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ClusterStatus, ServerPlan, ServerStatus } from '../../../src/core/protocol';
import { ClusterManager } from '../../../src/cluster/coordinator/clusterManager';
import { ChildRegistry } from '../../../src/daemon/childRegistry';
import { ServerSupervisor } from '../../../src/daemon/supervisor';
import { ensureTinyModel } from '../../fixtures/models';
import { getLlamaBinaries } from '../../harness/llamaBinaries';
import { cleanupStaleNamespaces, NetnsLab, PeerHost } from '../../harness/netns';
import { waitFor } from '../../harness/processes';
import { labOrSkip, RunningAgent, startAgent } from './agents';

// The sidecar's cluster manager driving the real supervisor and llama-server, with peers as
// network-namespace hosts: split over the peers, one peer in direct mode, a peer unreachable at
// start, a peer killed mid-stream, a peer unplugged (no FIN: heartbeats), and a peer coming back.

describe('cluster: failover with the sidecar supervisor', function () {
  this.timeout(300_000);
  let lab: NetnsLab | undefined;
  let agents: RunningAgent[] = [];
  let sup: ServerSupervisor | undefined;
  let cluster: ClusterManager | undefined;
  let stateDir = '';
  let base: ServerPlan;

  before(async function () {
    lab = await labOrSkip(this);
    await cleanupStaleNamespaces();
    const hosts = await lab.addHosts([{ delayMs: 0.2 }, { delayMs: 2, lossPercent: 0.5 }, { delayMs: 0.2 }]);
    agents = await Promise.all(hosts.map((h, i) => startAgent(h, i === 2 ? { direct: true } : {})));
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-cluster-sidecar-'));
    sup = new ServerSupervisor({
      registry: new ChildRegistry(path.join(stateDir, 'children')),
      serverLogFile: path.join(stateDir, 'llama-server.log'),
      connectionFile: path.join(stateDir, 'server.json'),
      log: () => undefined,
      restart: { initialMs: 300, maxMs: 2000, factor: 2, jitter: 0 },
      maxCrashes: 5,
      stableMs: 60_000,
      stopGraceMs: 3000,
      activityPollMs: 60_000,
      healthPollMs: 100,
      hangCheck: { intervalMs: 60_000, timeoutMs: 10_000, failures: 0 },
      defaultReadyTimeoutMs: 120_000,
      watchdog: false,
      routerMode: false,
    });
    cluster = new ClusterManager({ heartbeatMs: 500, deadAfterMs: 3000, retryMinMs: 500, retryMaxMs: 2000, connectTimeoutMs: 3000 });
    cluster.attach(sup);
    const bins = await getLlamaBinaries();
    base = { binaryPath: bins.serverPath, modelPath: await ensureTinyModel(), args: ['-c', '512', '--no-repack', '-t', '1', '--no-webui', '-lv', '4'] };
  });

  after(async function () {
    this.timeout(60_000);
    await sup?.close().catch(() => undefined);
    await cluster?.close();
    await lab?.cleanup();
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const peerCfg = (a: RunningAgent, i: number) => ({
    name: `box${i}`,
    host: a.host.addr,
    port: a.port,
    token: a.token,
    transport: (i === 2 ? 'direct' : 'tunnel') as 'direct' | 'tunnel',
  });

  /** llama-server's output since its last start. */
  function serverLog(): string {
    const all = sup!.serverLog.tail(5000).join('\n');
    const i = all.lastIndexOf('llama_model_loader: loaded meta data');
    return i >= 0 ? all.slice(i) : all;
  }

  function bufferOn(endpoint: string, log = serverLog()): number {
    const m = new RegExp(`RPC\\d*\\[${endpoint.replace(/\./g, '\\.')}\\] model buffer size =\\s+([\\d.]+) MiB`).exec(log);
    return m ? Number(m[1]) : 0;
  }

  async function complete(st: ServerStatus, n = 8): Promise<number> {
    const res = await fetch(`${st.endpoint!.url}/completion`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${st.endpoint!.apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: 'def main():', n_predict: n, temperature: 0 }),
    });
    assert.strictEqual(res.status, 200, await res.clone().text());
    return ((await res.json()) as { timings: { predicted_n: number } }).timings.predicted_n;
  }

  function waitCluster(what: string, pred: (s: ClusterStatus) => boolean, timeoutMs = 30_000): Promise<ClusterStatus> {
    return waitFor(
      what,
      async () => {
        const s = cluster!.status();
        return pred(s) ? s : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  }

  it('spreads over the peers (one in direct mode), leaving out one that cannot be reached, and answers', async () => {
    cluster!.configure({
      mode: 'split',
      // The direct peer first: with this tiny model the first device takes the (small) layers and
      // the second the (large) output, so both transports carry layers.
      peers: [
        peerCfg(agents[2], 2),
        peerCfg(agents[0], 0),
        peerCfg(agents[1], 1),
        { name: 'ghost', host: agents[0].host.addr, port: 7390, token: 'sp1_whatever-whatever-whatever', transport: 'tunnel' },
      ],
    });
    const plan = await cluster!.preparePlan(base);
    const st = await sup!.load(plan);
    assert.strictEqual(st.phase, 'ready');
    const cs = cluster!.status();
    assert.ok(cs.plan!.peersUsed.length >= 2, `peers used: ${cs.plan!.peersUsed}`);
    const ghost = cs.peers.find((p) => p.name === 'ghost')!;
    assert.strictEqual(ghost.phase, 'down');
    assert.ok(
      cs.events.some((e) => e.kind === 'peer-excluded' && /without it: peer ghost is unreachable \(Nothing listens on peer "ghost"/.test(e.message)),
      JSON.stringify(cs.events),
    );
    const log = serverLog();
    for (const p of cs.peers.filter((x) => x.inUse)) {
      assert.ok(bufferOn(p.endpoint!, log) > 0, `no model buffer on ${p.name} (${p.endpoint})`);
      assert.ok(p.layers, `no layers shown for ${p.name}`);
    }
    const direct = cs.peers.find((p) => p.name === 'box2')!;
    assert.strictEqual(direct.endpoint, `${agents[2].host.addr}:50052`, 'the direct peer is reached on its own address');
    assert.ok((await complete(st)) > 0);
    process.stdout.write(`      (${cs.plan!.summary}\n       ${cs.plan!.lines.join('\n       ')})\n`);
  });

  it('a peer killed mid-stream: the stream breaks, the peer is marked down, the model restarts on the rest', async () => {
    const before = cluster!.status();
    const victim = before.peers.find((p) => p.inUse && p.transport === 'tunnel')!;
    const host = agents[Number(victim.name.slice(3))].host;
    const st = sup!.status();
    const res = await fetch(`${st.endpoint!.url}/completion`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${st.endpoint!.apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: 'def main():', n_predict: 100_000, temperature: 0, stream: true, ignore_eos: true }),
    });
    const reader = res.body!.getReader();
    let chunks = 0;
    let streamError: string | undefined;
    let sawStop = false;
    const read = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks += 1;
          if (chunks === 5) void host.killAll();
          if (/"stop":\s*true/.test(Buffer.from(value).toString())) sawStop = true;
        }
      } catch (e) {
        streamError = (e as Error).message;
      }
    })();
    await read;
    assert.ok(chunks >= 5, `only ${chunks} chunks before the end`);
    assert.ok(!sawStop, 'the stream ended normally although a peer holding layers died');
    process.stdout.write(`      (stream after ${chunks} chunks: ${streamError ?? 'ended without a final chunk'})\n`);
    const down = await waitCluster('peer marked down', (s) => s.peers.some((p) => p.name === victim.name && p.phase === 'down'));
    const ev = down.events.find((e) => e.kind === 'peer-down' && e.peer === victim.name);
    assert.ok(ev, JSON.stringify(down.events));
    assert.match(
      ev.message,
      new RegExp(
        `^Peer ${victim.name} went away while holding layers of tiny-qwen2-\\w+\\.gguf \\(.+\\); a request running on it was cut off\\. Restarting on the remaining devices\\.$`,
      ),
    );
    const ready = await waitFor(
      'restart on the remaining peers',
      async () => {
        const s = sup!.status();
        return s.phase === 'ready' && !s.plan!.args.join(' ').includes(victim.endpoint!) ? s : undefined;
      },
      { timeoutMs: 60_000 },
    );
    assert.strictEqual(bufferOn(victim.endpoint!), 0);
    assert.ok((await complete(ready)) > 0);
    const after = cluster!.status();
    assert.ok(!after.plan!.peersUsed.includes(victim.name));
    assert.ok(after.events.some((e) => e.kind === 'replanned'));
  });

  it('a peer unplugged (no FIN, no RST) is noticed by missing heartbeats and dropped too', async () => {
    const cs = cluster!.status();
    const victim = cs.peers.find((p) => p.inUse && p.transport === 'tunnel' && p.phase === 'up');
    if (!victim) {
      // The first failover may have left only the direct peer in the plan: unplug that one then.
      assert.ok(cs.peers.some((p) => p.inUse));
    }
    const target = victim ?? cs.peers.find((p) => p.inUse)!;
    const host: PeerHost = agents[Number(target.name.slice(3))].host;
    const t0 = Date.now();
    await host.setLink(false);
    try {
      await waitCluster('unplugged peer marked down', (s) => s.peers.some((p) => p.name === target.name && p.phase === 'down'), 20_000);
      const noticed = Date.now() - t0;
      process.stdout.write(`      (unplugged ${target.name} noticed after ${noticed} ms)\n`);
      const ready = await waitFor(
        'restart without the unplugged peer',
        async () => {
          const s = sup!.status();
          return s.phase === 'ready' && !s.plan!.args.join(' ').includes(target.endpoint!) ? s : undefined;
        },
        { timeoutMs: 60_000 },
      );
      assert.ok((await complete(ready)) > 0);
    } finally {
      await host.setLink(true);
    }
    // Plugged back in: offered back, not taken back silently.
    const back = await waitCluster('returned peer offered back', (s) => s.peers.some((p) => p.name === target.name && p.returned), 30_000);
    assert.ok(back.events.some((e) => e.kind === 'peer-returned' && e.peer === target.name && /is back/.test(e.message)));
    assert.ok(!sup!.status().plan!.args.join(' ').includes(target.endpoint!));
    await cluster!.useReturnedPeers();
    const st = await waitFor(
      'reloaded with the returned peer',
      async () => {
        const s = sup!.status();
        return s.phase === 'ready' && s.plan!.args.join(' ').includes(target.endpoint!) ? s : undefined;
      },
      { timeoutMs: 60_000 },
    );
    assert.ok(bufferOn(target.endpoint!) > 0 || !cluster!.status().plan!.peersUsed.includes(target.name));
    assert.ok((await complete(st)) > 0);
  });
});
