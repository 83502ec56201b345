import * as assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { PeerAgent } from '../../../src/cluster/agent/agent';
import { PEER_PROTOCOL_VERSION, STRATA_VERSION } from '../../../src/cluster/protocol';
import { PeerLink } from '../../../src/cluster/coordinator/peerLink';
import { readLine, writeJsonLine } from '../../../src/cluster/transport/lines';
import { AgentConnectError, AgentControlClient } from '../../../src/cluster/transport/agentClient';
import { newToken, serverHandshake, tokenKey } from '../../../src/cluster/transport/peerHandshake';
import { waitFor } from '../../harness/processes';

// The agent before anyone has logged in, in this process on loopback: the attacks of issue 13
// items 5 and 6 against the real PeerAgent over real sockets. Other hosts are other loopback
// addresses (127.0.0.2, ...: all of 127/8 is this machine on Linux), which the agent tells apart
// by remote address exactly as it would two machines on a LAN.

const VICTIM = '127.0.0.1';

interface Held {
  sockets: net.Socket[];
  /** Resolves when the agent has closed every one of them. */
  allClosed: Promise<void>;
}

/** `n` connections from `from` that never say a word. */
async function silentSockets(n: number, from: string, port: number): Promise<Held> {
  const sockets: net.Socket[] = [];
  const closed: Promise<void>[] = [];
  const connected: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: VICTIM, port, localAddress: from });
    s.on('error', () => undefined);
    sockets.push(s);
    closed.push(new Promise((r) => s.once('close', () => r())));
    connected.push(
      new Promise((r) => {
        s.once('connect', () => r());
        s.once('close', () => r());
      }),
    );
  }
  await Promise.all(connected);
  return { sockets, allClosed: Promise.all(closed).then(() => undefined) };
}

function startAgent(dir: string, logs: string[], extra: Partial<ConstructorParameters<typeof PeerAgent>[0]> = {}): { agent: PeerAgent; token: string } {
  const token = newToken();
  // No rpc-server is needed to log in and ping; a path that does not exist keeps the probe quiet.
  const agent = new PeerAgent({ host: VICTIM, port: 0, token, stateDir: dir, rpcServer: path.join(dir, 'no-rpc-server'), log: (m) => logs.push(m), ...extra });
  return { agent, token };
}

describe('cluster: the agent before login (pre-auth limits)', function () {
  this.timeout(60_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-agent-login-'));
  let agent: PeerAgent | undefined;
  const held: net.Socket[] = [];

  afterEach(async () => {
    for (const s of held.splice(0)) s.destroy();
    await agent?.close();
    agent = undefined;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('one host holding 200 silent sockets does not keep another host out, and its silence counts as failed logins', async () => {
    const logs: string[] = [];
    const a = startAgent(dir, logs, { handshakeTimeoutMs: 1500 });
    agent = a.agent;
    const { port } = await agent.listen();
    const attack = await silentSockets(200, '127.0.0.2', port);
    held.push(...attack.sockets);

    // Before any of the attacker's logins has run out of time: the other host gets in at once.
    const t0 = Date.now();
    const c = await AgentControlClient.connect({ host: VICTIM, port, token: a.token, label: 'good host' }, { timeoutMs: 5000 });
    const rtt = await c.ping();
    const ms = Date.now() - t0;
    c.close();
    assert.ok(ms < 1000, `the other host waited ${ms} ms`);

    // The agent drops the silent ones itself (most at once, the rest at the login deadline)...
    const closedIn = Date.now();
    await attack.allClosed;
    assert.ok(Date.now() - closedIn < 4000, 'silent sockets outlived the login deadline');
    // ...and counts their silence like wrong tokens: the attacker is blocked, the other host is not.
    assert.ok(
      logs.some((l) => /^auth: blocking 127\.0\.0\.2 for 60 s/.test(l)),
      logs.join('\n'),
    );
    assert.ok(
      logs.some((l) => /^auth: dropping new connections from 127\.0\.0\.2 while 16 of its connections are still logging in/.test(l)),
      logs.join('\n'),
    );
    assert.ok(
      logs.some((l) => /^auth: refused 127\.0\.0\.2:\d+: not logged in within 1500 ms/.test(l)),
      logs.join('\n'),
    );

    // Blocked, it still cannot take more than one slot; the other host still gets in.
    const again = await silentSockets(50, '127.0.0.2', port);
    held.push(...again.sockets);
    const c2 = await AgentControlClient.connect({ host: VICTIM, port, token: a.token, label: 'good host' }, { timeoutMs: 5000 });
    await c2.ping();
    c2.close();
    process.stdout.write(`      (other host logged in and pinged in ${ms} ms under 200 silent sockets; ping ${rtt.toFixed(2)} ms)\n`);
  });

  it('many hosts filling every login slot: a newcomer still gets in (it displaces the oldest login of the busiest host)', async () => {
    const logs: string[] = [];
    const a = startAgent(dir, logs, { handshakeTimeoutMs: 5000 });
    agent = a.agent;
    const { port } = await agent.listen();
    // 20 hosts × 16 silent logins: 320, more than the 128 the agent holds in all.
    for (let h = 10; h < 30; h++) held.push(...(await silentSockets(16, `127.0.0.${h}`, port)).sockets);
    // The agent holds as many as it may (128; the rest were dropped or displaced): every slot is taken.
    const open = () => held.filter((s) => !s.destroyed).length;
    await waitFor('the agent to drop what it cannot hold', async () => (open() <= 128 ? true : undefined), { timeoutMs: 5000 });
    const stillOpen = open();
    const t0 = Date.now();
    const c = await AgentControlClient.connect({ host: VICTIM, port, token: a.token, label: 'newcomer' }, { timeoutMs: 5000 });
    await c.ping();
    c.close();
    const ms = Date.now() - t0;
    assert.ok(ms < 2000, `the newcomer waited ${ms} ms`);
    assert.ok(stillOpen >= 120, `only ${stillOpen} silent sockets were open: the slots were not all taken`);
    process.stdout.write(`      (newcomer in after ${ms} ms while 20 hosts held ${stillOpen} silent logins)\n`);
  });
});

describe('cluster: peer protocol versions, both directions, on both sides', function () {
  this.timeout(30_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-agent-version-'));
  let agent: PeerAgent | undefined;

  afterEach(async () => {
    await agent?.close();
    agent = undefined;
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const NEWER = PEER_PROTOCOL_VERSION + 1;
  const v = STRATA_VERSION.replace(/\./g, '\\.');
  const box2 = 'peer "box2" \\(127\\.0\\.0\\.1:\\d+\\)';

  it('a newer Strata meeting an older agent: the client is told to copy the agent over, the agent logs the same', async () => {
    const logs: string[] = [];
    const a = startAgent(dir, logs);
    agent = a.agent;
    const { port } = await agent.listen();
    const err = await AgentControlClient.connect({ host: VICTIM, port, token: a.token, label: 'box2' }, { protocolVersion: NEWER }).then(
      (c) => {
        c.close();
        return undefined;
      },
      (e: Error) => e,
    );
    assert.ok(err instanceof AgentConnectError && err.code === 'version', `not refused for the version: ${String(err)}`);
    assert.match(
      err.message,
      new RegExp(
        `^${box2} runs strata-peer ${v} \\(peer protocol ${PEER_PROTOCOL_VERSION}\\), older than this Strata ${v} \\(peer protocol ${NEWER}\\): copy the agent from this machine to that one \\(scp .*dist/peer\\.js HOST:strata-peer\\.js\\) and restart strata-peer there\\.$`,
      ),
    );
    await waitFor("the agent's message", async () => (logs.some((l) => /runs Strata/.test(l)) ? true : undefined), { timeoutMs: 5000 });
    const line = logs.find((l) => /runs Strata/.test(l))!;
    assert.match(
      line,
      new RegExp(
        `^127\\.0\\.0\\.1:\\d+ runs Strata ${v} \\(peer protocol ${NEWER}\\), newer than this strata-peer ${v} \\(peer protocol ${PEER_PROTOCOL_VERSION}\\): copy the agent from that machine here .* and restart strata-peer\\.$`,
      ),
    );
  });

  it('an older Strata meeting a newer agent: the client is told to update Strata, the agent logs the same; the sidecar marks the peer incompatible', async () => {
    const logs: string[] = [];
    const a = startAgent(dir, logs, { protocolVersion: NEWER });
    agent = a.agent;
    const { port } = await agent.listen();
    const err = await AgentControlClient.connect({ host: VICTIM, port, token: a.token, label: 'box2' }).then(
      (c) => {
        c.close();
        return undefined;
      },
      (e: Error) => e,
    );
    assert.ok(err instanceof AgentConnectError && err.code === 'version', `not refused for the version: ${String(err)}`);
    assert.match(
      err.message,
      new RegExp(
        `^${box2} runs strata-peer ${v} \\(peer protocol ${NEWER}\\), newer than this Strata ${v} \\(peer protocol ${PEER_PROTOCOL_VERSION}\\): update Strata Coder on this machine, or run there the strata-peer that came with this Strata\\.$`,
      ),
    );
    assert.ok(
      logs.some((l) =>
        new RegExp(
          `runs Strata ${v} \\(peer protocol ${PEER_PROTOCOL_VERSION}\\), older than this strata-peer ${v} \\(peer protocol ${NEWER}\\): update Strata Coder on that machine`,
        ).test(l),
      ),
      logs.join('\n'),
    );

    // The sidecar's standing link: "incompatible" with that sentence, not "down" and retried every second.
    const link = new PeerLink(
      { name: 'box2', host: VICTIM, port, token: a.token, transport: 'tunnel' },
      {
        heartbeatMs: 500,
        deadAfterMs: 3000,
        connectTimeoutMs: 5000,
        retryMinMs: 200,
        retryMaxMs: 1000,
        refreshMs: 60_000,
        log: () => undefined,
      },
    );
    try {
      await waitFor('the link to give up', async () => (link.phase === 'connecting' ? undefined : true), { timeoutMs: 10_000 });
      assert.strictEqual(link.phase, 'incompatible');
      assert.match(link.reason!, /newer than this Strata .*: update Strata Coder on this machine/);
    } finally {
      link.close();
    }
  });

  it('an agent from before versions were answered (no version in its answer): a newer Strata still says what to do', async () => {
    // That agent's open answer, over a real socket after a real handshake: {"ok":true,"heartbeatMs":...} and nothing else.
    const token = newToken();
    const server = net.createServer(async (sock) => {
      sock.on('error', () => undefined);
      try {
        const ch = await serverHandshake(sock, tokenKey(token), { label: 'old agent' });
        // The refused client may drop the tunnel without its close record: a cut, not this test's subject.
        ch.on('error', () => undefined);
        await readLine(ch, { timeoutMs: 5000, what: 'open' });
        writeJsonLine(ch, { ok: true, heartbeatMs: ch.heartbeatMs });
      } catch {
        sock.destroy();
      }
    });
    await new Promise<void>((r) => server.listen(0, VICTIM, () => r()));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const err = await AgentControlClient.connect({ host: VICTIM, port, token, label: 'box2' }, { protocolVersion: NEWER }).then(
        (c) => {
          c.close();
          return undefined;
        },
        (e: Error) => e,
      );
      assert.ok(err instanceof AgentConnectError && err.code === 'version', `not refused for the version: ${String(err)}`);
      assert.match(
        err.message,
        new RegExp(
          `^${box2} runs strata-peer from an older Strata \\(peer protocol 1\\), older than this Strata ${v} \\(peer protocol ${NEWER}\\): copy the agent`,
        ),
      );
      // The same agent and a Strata of its own protocol: no complaint.
      const ok = await AgentControlClient.connect({ host: VICTIM, port, token, label: 'box2' }, { protocolVersion: 1 });
      ok.close();
    } finally {
      server.close();
    }
  });
});
