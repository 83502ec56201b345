import * as assert from 'assert';
import * as path from 'path';
import type { ClusterEvent, ServerPlan, SidecarStatus } from '../../../src/core/protocol';
import { SidecarClient, SidecarError } from '../../../src/core/daemonClient';
import { ensureTinyModel, testModelsDir } from '../../fixtures/models';
import { cleanupStaleNamespaces, NetnsLab } from '../../harness/netns';
import { cleanupStateDir, connectTestSidecar, makeStateDir, tinyPlan, waitUntil } from '../../harness/sidecar';
import { labOrSkip, RunningAgent, startAgent } from './agents';

// The cluster as a window reaches it: the real sidecar daemon (its bundle, its control socket),
// peers as network-namespace hosts running the real strata-peer. A window hands over peers and
// tokens, loads a model, and the daemon spreads it; placement puts a whole model on a peer for
// completions; a peer going away is noticed and the window keeps working.

describe('cluster: through the sidecar daemon', function () {
  this.timeout(300_000);
  let lab: NetnsLab | undefined;
  let agents: RunningAgent[] = [];
  let stateDir = '';
  const clients: SidecarClient[] = [];
  let plan: ServerPlan;
  let model = '';
  const events: ClusterEvent[] = [];

  before(async function () {
    lab = await labOrSkip(this);
    await cleanupStaleNamespaces();
    model = await ensureTinyModel();
    const hosts = await lab.addHosts([{ delayMs: 0.2 }, { delayMs: 0.2 }]);
    // box0 may also run whole models (placement) from the test models folder.
    agents = await Promise.all(hosts.map((h, i) => startAgent(h, i === 0 ? { extra: ['--models-dir', testModelsDir()] } : {})));
    stateDir = makeStateDir();
    plan = await tinyPlan(model, { args: ['--no-repack', '-t', '1', '-c', '512', '--no-webui', '-lv', '4'] });
  });

  after(async function () {
    this.timeout(60_000);
    if (stateDir) await cleanupStateDir(stateDir, clients);
    await lab?.cleanup();
  });

  async function window(): Promise<SidecarClient> {
    const c = await connectTestSidecar(stateDir);
    clients.push(c);
    c.on('cluster', (e) => events.push(e));
    return c;
  }

  const peers = () => agents.map((a, i) => ({ name: `box${i}`, host: a.host.addr, port: a.port, token: a.token, transport: 'tunnel' as const }));

  function waitStatus(c: SidecarClient, what: string, pred: (s: SidecarStatus) => boolean, timeoutMs = 60_000): Promise<SidecarStatus> {
    return waitUntil(what, async () => pred(await c.status()), timeoutMs, 100).then(() => c.status());
  }

  async function complete(
    url: string,
    apiKey: string,
    route = '/completion',
    body: object = { prompt: 'def main():', n_predict: 6, temperature: 0 },
  ): Promise<number> {
    const res = await fetch(`${url}${route}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.strictEqual(res.status, 200, await res.clone().text());
    return ((await res.json()) as { timings: { predicted_n: number } }).timings.predicted_n;
  }

  it('refuses a malformed peer list with a reason, and keeps what it had', async () => {
    const c = await window();
    await assert.rejects(
      c.request('cluster.configure', { peers: [{ name: 'x', host: '10.0.0.1', port: 7399, token: 'short', transport: 'tunnel' }] }),
      (e: SidecarError) => e.code === 'bad-request' && /peer x: token missing or too short/.test(e.message),
    );
    await assert.rejects(
      c.request('cluster.configure', { peers: peers(), placements: [{ role: 'fim', peer: 'nobody', model: 'm.gguf' }] }),
      (e: SidecarError) => e.code === 'bad-request' && /peer "nobody" is not one of the configured peers/.test(e.message),
    );
    assert.strictEqual((await c.request('cluster.status', {})).peers.length, 0);
  });

  it("spreads a window's model over the peers once restarted after they were added; windows see the plan they asked for, and a second window joins it", async () => {
    const a = await window();
    // Loaded before any peer is known: it runs here alone.
    const alone = await a.load(plan);
    assert.strictEqual(alone.phase, 'ready');
    assert.strictEqual((await a.status()).cluster, undefined);
    const cs = await a.request('cluster.configure', { peers: peers(), mode: 'split' });
    assert.deepStrictEqual(
      cs.peers.map((p) => p.name),
      ['box0', 'box1'],
    );
    assert.strictEqual((await a.status()).server.pid, alone.pid, 'adding peers must not reload a running model by itself');
    // A restart plans afresh, with the peers.
    const st = await a.restart();
    assert.strictEqual(st.phase, 'ready');
    assert.notStrictEqual(st.pid, alone.pid);
    assert.deepStrictEqual(st.plan?.args, plan.args, 'the window must see its own plan, not the split made of it');
    const s = await a.status();
    assert.ok(s.cluster?.split && s.cluster.split.peers.length >= 1, `no split in the status: ${JSON.stringify(s.cluster)}`);
    assert.deepStrictEqual(s.cluster.peers, { up: 2, total: 2 });
    // llama-server itself says where the weights went: a model buffer behind each tunnel in use.
    const log = (await a.logs('server', 3000)).lines.join('\n');
    const detail = await a.request('cluster.status', {});
    for (const p of detail.peers.filter((x) => x.inUse)) {
      const m = new RegExp(`RPC\\d*\\[${p.endpoint!.replace(/\./g, '\\.')}\\] model buffer size =\\s+([\\d.]+) MiB`).exec(log);
      assert.ok(m && Number(m[1]) > 0, `no layers behind ${p.name} (${p.endpoint})`);
      assert.ok(p.layers, `no layers shown for ${p.name}`);
    }
    assert.ok((await complete(st.endpoint!.url, st.endpoint!.apiKey)) > 0);

    const b = await window();
    const joined = await b.load(plan);
    assert.strictEqual(joined.pid, st.pid, 'a second window with the same model must join the running server');
  });

  it('placement: a whole model on a peer answers completions through the tunnel', async () => {
    const a = clients[clients.length - 1];
    await a.request('cluster.configure', {
      peers: peers(),
      mode: 'split',
      placements: [{ role: 'fim', peer: 'box0', model: path.basename(model), args: ['-c', '256', '-t', '1', '--no-repack'] }],
    });
    const s = await waitStatus(
      a,
      'the fim placement to be ready',
      (x) => x.cluster?.placements.some((p) => p.role === 'fim' && p.phase === 'ready') ?? false,
      120_000,
    );
    const fim = s.cluster!.placements.find((p) => p.role === 'fim')!;
    assert.match(fim.url!, /^http:\/\/127\.0\.0\.1:\d+$/, "windows reach a placed server on this machine's loopback only");
    const n = await complete(fim.url!, fim.apiKey!, '/infill', {
      input_prefix: 'def add(a, b):\n    return ',
      input_suffix: '\n',
      n_predict: 4,
      temperature: 0,
    });
    assert.ok(n > 0);
    const res = await fetch(`${fim.url}/completion`, { method: 'POST', body: '{"prompt":"x","n_predict":1}' });
    assert.strictEqual(res.status, 401, 'the placed server must want its key');
    assert.ok(
      events.some((e) => e.kind === 'placed' && e.peer === 'box0'),
      JSON.stringify(events),
    );
  });

  it('a peer going away: its placement is marked down, the split model restarts without it, and windows keep working', async () => {
    const a = clients[clients.length - 1];
    const before = await a.status();
    const pidBefore = before.server.pid;
    // Mode split spreads over every reachable peer, so box0 holds layers as well as the placed model.
    assert.ok(before.cluster?.split?.peers.includes('box0'), JSON.stringify(before.cluster));
    await agents[0].host.killAll();
    const s = await waitStatus(
      a,
      'the fim placement to be marked down',
      (x) => x.cluster?.placements.some((p) => p.role === 'fim' && p.phase === 'down') ?? false,
      30_000,
    );
    assert.match(s.cluster!.placements.find((p) => p.role === 'fim')!.error ?? '', /box0 is not reachable.*the local server answers completions meanwhile/);
    assert.ok(
      events.some((e) => e.kind === 'placement-down' && e.role === 'fim' && e.peer === 'box0'),
      JSON.stringify(events.map((e) => e.kind)),
    );
    {
      const ready = await waitStatus(
        a,
        'the model to be ready again without box0',
        (x) => x.server.phase === 'ready' && x.server.pid !== pidBefore && !(x.cluster?.split?.peers.includes('box0') ?? false),
        120_000,
      );
      assert.deepStrictEqual(ready.server.plan?.args, plan.args);
      assert.ok(
        events.some((e) => e.kind === 'peer-down' && e.peer === 'box0'),
        JSON.stringify(events),
      );
      assert.ok(
        events.some((e) => e.kind === 'replanned'),
        JSON.stringify(events),
      );
    }
    const now = await a.status();
    assert.strictEqual(now.server.phase, 'ready');
    assert.deepStrictEqual(now.cluster?.peers, { up: 1, total: 2 });
    assert.ok((await complete(now.server.endpoint!.url, now.server.endpoint!.apiKey)) > 0);
  });

  it('removing the peer in use from the settings restarts the model here alone, without a crash loop', async () => {
    const a = clients[clients.length - 1];
    const before = await a.status();
    assert.ok(before.cluster?.split?.peers.includes('box1'), JSON.stringify(before.cluster));
    await a.request('cluster.configure', { peers: [], mode: 'split' });
    const s = await waitStatus(
      a,
      'the model to run here alone',
      (x) => x.server.phase === 'ready' && x.server.pid !== before.server.pid && !x.cluster,
      120_000,
    );
    assert.strictEqual(s.server.crashes, 0, 'llama-server must be switched over, not crash on a closed tunnel');
    assert.deepStrictEqual(s.server.plan?.args, plan.args);
    assert.ok((await complete(s.server.endpoint!.url, s.server.endpoint!.apiKey)) > 0);
    assert.ok(
      events.some((e) => e.kind === 'replanned' && /peer box0, box1 changed in the settings|peer box1 changed in the settings/.test(e.message)),
      JSON.stringify(events.map((e) => e.message)),
    );
  });
});
