import * as assert from 'assert';
import { execFile } from 'child_process';
import * as path from 'path';
import * as crypto from 'crypto';
import * as net from 'net';
import { FailureRateGate } from '../../../src/cluster/transport/authGate';
import { CryptoPool } from '../../../src/cluster/transport/cryptoPool';
import { clientHandshake, NonceCache, PeerAuthError, serverHandshake, ServerHandshakeOptions, tokenKey } from '../../../src/cluster/transport/peerHandshake';
import { SecureChannel } from '../../../src/cluster/transport/secureChannel';

// The agent's login and record layer over real loopback TCP.

const TOKEN = 'sp1_test-token-0123456789abcdef';

interface Pair {
  port: number;
  /** Server-side channels (or errors) in accept order. */
  accepted: Array<Promise<SecureChannel>>;
  /** Raw bytes each server-side socket received, for replay tests. */
  received: Buffer[][];
  close(): Promise<void>;
}

async function agentLike(opts: ServerHandshakeOptions = {}, token = TOKEN): Promise<Pair> {
  const accepted: Array<Promise<SecureChannel>> = [];
  const received: Buffer[][] = [];
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    const rec: Buffer[] = [];
    received.push(rec);
    s.on('data', (b: Buffer) => rec.push(Buffer.from(b)));
    const p = serverHandshake(s, tokenKey(token), { failureDelayMs: 0, ...opts });
    // Tests that care listen for errors themselves; the rest must not crash on teardown resets.
    p.then(
      (ch) => ch.on('error', () => undefined),
      () => undefined,
    );
    accepted.push(p);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    accepted,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

function readN(ch: SecureChannel, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= n) {
        ch.off('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    ch.on('data', onData);
    ch.once('error', reject);
  });
}

describe('cluster secure channel', () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
  });

  it('authenticates both ways and carries bytes intact in both directions (8 MiB each way)', async () => {
    pair = await agentLike();
    const client = await clientHandshake(await connect(pair.port), TOKEN, { heartbeatMs: 0, deadAfterMs: 0 });
    const server = await pair.accepted[0];
    const up = crypto.randomBytes(8 * 1024 * 1024);
    const down = crypto.randomBytes(8 * 1024 * 1024);
    const gotUp = readN(server, up.length);
    const gotDown = readN(client, down.length);
    client.write(up);
    server.write(down);
    assert.ok((await gotUp).equals(up), 'client→agent bytes differ');
    assert.ok((await gotDown).equals(down), 'agent→client bytes differ');
    // Nothing readable on the wire: the payload never appears in clear.
    const wire = Buffer.concat(pair.received[0]);
    assert.strictEqual(wire.indexOf(up.subarray(1000, 1032)), -1);
    client.destroy();
    server.destroy();
  });

  it('refuses a wrong token with a clear message, and the agent counts the failure', async () => {
    const failures: string[] = [];
    pair = await agentLike({ gate: { admit: () => undefined, failed: (a, why) => failures.push(`${a} ${why}`), succeeded: () => undefined } });
    await assert.rejects(clientHandshake(await connect(pair.port), 'sp1_not-the-token-at-all-000000', { label: 'peer "b"' }), (e: PeerAuthError) => {
      assert.strictEqual(e.code, 'bad-token');
      assert.match(e.message, /peer "b" refused the token: copy it again from `strata-peer token`/);
      return true;
    });
    await assert.rejects(pair.accepted[0], /wrong token/);
    assert.deepStrictEqual(failures, ['127.0.0.1 bad-token']);
  });

  it('refuses a replayed handshake (recorded client bytes sent again)', async () => {
    const nonces = new NonceCache();
    const failures: string[] = [];
    pair = await agentLike({ seenNonces: nonces, gate: { admit: () => undefined, failed: (_a, why) => failures.push(why), succeeded: () => undefined } });
    const c1 = await clientHandshake(await connect(pair.port), TOKEN, { heartbeatMs: 0, deadAfterMs: 0 });
    const s1 = await pair.accepted[0];
    c1.write(Buffer.from('{"open":"control"}\n'));
    await readN(s1, 5);
    c1.destroy();
    // An eavesdropper replays everything the client sent, byte for byte.
    const recorded = Buffer.concat(pair.received[0]);
    const raw = await connect(pair.port);
    const answer: Buffer[] = [];
    raw.on('data', (b: Buffer) => answer.push(b));
    raw.write(recorded);
    await assert.rejects(pair.accepted[1], /replayed an earlier handshake/);
    await new Promise<void>((r) => raw.once('close', () => r()));
    const a = Buffer.concat(answer);
    // The agent's greeting (42 bytes, fresh nonce), then the refusal (status 1).
    assert.strictEqual(a[42], 1, 'the replay was not refused');
    assert.deepStrictEqual(failures, ['replay']);

    // Same with a fresh nonce cache (a restarted agent): the fresh server nonce alone defeats it.
    const failures2: string[] = [];
    const pair2 = await agentLike({ gate: { admit: () => undefined, failed: (_a, why) => failures2.push(why), succeeded: () => undefined } });
    try {
      const raw2 = await connect(pair2.port);
      raw2.on('data', () => undefined);
      raw2.write(recorded);
      await assert.rejects(pair2.accepted[0], /wrong token/);
      assert.deepStrictEqual(failures2, ['bad-token']);
      raw2.destroy();
    } finally {
      await pair2.close();
    }
  });

  it('kills the connection on a tampered record', async () => {
    // A man in the middle flips one bit of the first record after the handshake.
    pair = await agentLike();
    const upstreamPort = pair.port;
    let flipped = false;
    let seen = 0;
    const mitm = net.createServer((down) => {
      const up = net.connect({ host: '127.0.0.1', port: upstreamPort });
      up.on('data', (b: Buffer) => down.write(b));
      down.on('data', (b: Buffer) => {
        const out = Buffer.from(b);
        // Client sends 37 (hello) + 32 (proof) bytes before records.
        if (!flipped && seen + out.length > 69 + 10) {
          const i = Math.max(0, 69 + 10 - seen);
          out[i] ^= 0x01;
          flipped = true;
        }
        seen += out.length;
        up.write(out);
      });
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
      up.on('close', () => down.destroy());
      down.on('close', () => up.destroy());
    });
    await new Promise<void>((r) => mitm.listen(0, '127.0.0.1', () => r()));
    try {
      const client = await clientHandshake(await connect((mitm.address() as net.AddressInfo).port), TOKEN, { heartbeatMs: 0, deadAfterMs: 0 });
      client.on('error', () => undefined);
      const server = await pair.accepted[0];
      const err = new Promise<Error>((r) => server.once('error', r));
      client.write(Buffer.alloc(100, 7));
      const e = (await err) as NodeJS.ErrnoException;
      assert.strictEqual(e.code, 'EBADRECORD');
      assert.match(e.message, /fails authentication/);
    } finally {
      await new Promise<void>((r) => mitm.close(() => r()));
    }
  });

  it('notices a peer that goes silent (unplugged) through missing heartbeats', async () => {
    pair = await agentLike({ heartbeatMs: 100 });
    // A relay that stops forwarding after the handshake: the cable is pulled, no FIN, no RST.
    let cut = false;
    const relay = net.createServer((down) => {
      const up = net.connect({ host: '127.0.0.1', port: pair!.port });
      up.on('data', (b: Buffer) => {
        if (!cut) down.write(b);
      });
      down.on('data', (b: Buffer) => {
        if (!cut) up.write(b);
      });
      up.on('error', () => undefined);
      down.on('error', () => undefined);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    try {
      const client = await clientHandshake(await connect((relay.address() as net.AddressInfo).port), TOKEN, { heartbeatMs: 100, deadAfterMs: 600 });
      await pair.accepted[0];
      await new Promise((r) => setTimeout(r, 900));
      assert.ok(!client.destroyed, 'heartbeats should keep a quiet but live channel open');
      const t0 = Date.now();
      cut = true;
      const e = (await new Promise<Error>((r) => client.once('error', r))) as NodeJS.ErrnoException;
      assert.strictEqual(e.code, 'EPEERDEAD');
      assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    } finally {
      relay.close();
    }
  });

  it('rate-limits failed logins per address, and tells the client for how long', async () => {
    let now = 1_000_000;
    const blocks: string[] = [];
    const gate = new FailureRateGate({ maxFailures: 3, windowMs: 60_000, blockMs: 30_000, now: () => now, onBlock: (a, ms) => blocks.push(`${a} ${ms}`) });
    pair = await agentLike({ gate });
    for (let i = 0; i < 3; i++) {
      await assert.rejects(clientHandshake(await connect(pair.port), 'sp1_wrong-wrong-wrong-wrong'), (e: PeerAuthError) => e.code === 'bad-token');
    }
    assert.deepStrictEqual(blocks, ['127.0.0.1 30000']);
    // Even the right token is refused while blocked.
    await assert.rejects(clientHandshake(await connect(pair.port), TOKEN), (e: PeerAuthError) => {
      assert.strictEqual(e.code, 'rate-limited');
      assert.match(e.message, /refuses new connections for 30 s after too many failed logins/);
      return true;
    });
    now += 31_000;
    const ok = await clientHandshake(await connect(pair.port), TOKEN, { heartbeatMs: 0, deadAfterMs: 0 });
    ok.destroy();
    // A second offence blocks twice as long.
    for (let i = 0; i < 3; i++) gate.failed('10.0.0.9', 'bad-token');
    for (let i = 0; i < 3; i++) {
      now += 61_000;
      for (let j = 0; j < 3; j++) gate.failed('10.0.0.9', 'bad-token');
    }
    assert.deepStrictEqual(blocks.slice(1), ['10.0.0.9 30000', '10.0.0.9 60000', '10.0.0.9 120000', '10.0.0.9 240000']);
  });

  it('a flood of failures from many addresses blocks unknown addresses, not known-good ones', () => {
    let now = 0;
    const gate = new FailureRateGate({ globalMaxFailures: 10, globalBlockMs: 5000, now: () => now });
    gate.succeeded('192.168.1.5');
    for (let i = 0; i < 10; i++) gate.failed(`10.9.9.${i}`, 'bad-token');
    assert.strictEqual(gate.admit('10.1.1.1'), 5000);
    assert.strictEqual(gate.admit('192.168.1.5'), undefined);
    now += 5001;
    assert.strictEqual(gate.admit('10.1.1.1'), undefined);
  });

  it('says so when the other end is not a Strata agent', async () => {
    const srv = net.createServer((s) => s.end('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n' + 'x'.repeat(64)));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      await assert.rejects(clientHandshake(await connect((srv.address() as net.AddressInfo).port), TOKEN, { label: '10.0.0.2:22' }), (e: PeerAuthError) => {
        assert.strictEqual(e.code, 'not-a-peer');
        assert.match(e.message, /10\.0\.0\.2:22 is not a Strata peer agent/);
        return true;
      });
    } finally {
      srv.close();
    }
  });
});

describe('cluster secure channel with crypto threads (big records sealed and opened on a pool)', () => {
  const pool = new CryptoPool(2);
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
  });

  it('keeps every byte in order when big (threaded) and small (inline) writes interleave, both ways, with a pool-less end', async () => {
    pair = await agentLike({ cryptoPool: null });
    const client = await clientHandshake(await connect(pair.port), TOKEN, { heartbeatMs: 0, deadAfterMs: 0, cryptoPool: pool });
    const server = await pair.accepted[0];
    const before = pool.completed;
    const parts = [
      Buffer.from('a'),
      crypto.randomBytes(1 << 20),
      Buffer.from('bb'),
      crypto.randomBytes(3 * (1 << 20) + 17),
      Buffer.from('ccc'),
      crypto.randomBytes(200 * 1024),
    ];
    const all = Buffer.concat(parts);
    const got = readN(server, all.length);
    for (const b of parts) client.write(b);
    assert.ok((await got).equals(all), 'client→agent bytes differ or are out of order');
    const back = crypto.randomBytes(5 * (1 << 20));
    const gotBack = readN(client, back.length);
    server.write(back);
    assert.ok((await gotBack).equals(back), 'agent→client bytes differ (opened on the pool)');
    // 4.2 MiB sealed in 256 KiB records, 5 MiB opened: all of those records went through the threads.
    assert.ok(pool.completed - before >= 17 + 20, `only ${pool.completed - before} records on the pool`);
    client.destroy();
    server.destroy();
  });

  it('delivers everything before the end when the writer ends right after a big write', async () => {
    pair = await agentLike({ cryptoPool: pool });
    const client = await clientHandshake(await connect(pair.port), TOKEN, { heartbeatMs: 0, deadAfterMs: 0, cryptoPool: pool });
    const server = await pair.accepted[0];
    const data = crypto.randomBytes(6 * (1 << 20));
    const chunks: Buffer[] = [];
    const ended = new Promise<void>((r) => server.on('end', () => r()));
    server.on('data', (b: Buffer) => chunks.push(b));
    client.end(data);
    await ended;
    assert.ok(Buffer.concat(chunks).equals(data));
    server.destroy();
  });

  it('an idle pool does not keep a process alive, a busy one does', async () => {
    // A CLI (strata-peer connect, a bench) must exit when its work is done: it once hung forever.
    const poolModule = path.resolve(__dirname, '../../../src/cluster/transport/cryptoPool.ts');
    const script = `const { CryptoPool } = require(${JSON.stringify(poolModule)});
      const p = new CryptoPool(2);
      p.seal(Buffer.alloc(32), Buffer.alloc(12), Buffer.alloc(4), 0, Buffer.alloc(300000)).then((b) => console.log('sealed ' + b.length));`;
    const t0 = Date.now();
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', '-e', script], { timeout: 20_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    assert.match(out, /sealed 300021/, 'the pending job must keep the process alive until it is done');
    assert.ok(Date.now() - t0 < 15_000, 'the process must exit once the pool is idle');
  });

  it('kills the connection on a tampered big record opened on the pool', async () => {
    pair = await agentLike({ cryptoPool: pool });
    const upstreamPort = pair.port;
    let seen = 0;
    let flipped = false;
    const mitm = net.createServer((down) => {
      const up = net.connect({ host: '127.0.0.1', port: upstreamPort });
      up.on('data', (b: Buffer) => down.write(b));
      down.on('data', (b: Buffer) => {
        const out = Buffer.from(b);
        // Deep inside the first (256 KiB) record, well past the handshake.
        const at = 69 + 100_000;
        if (!flipped && seen + out.length > at) {
          out[at - seen] ^= 0x01;
          flipped = true;
        }
        seen += out.length;
        up.write(out);
      });
      for (const [a, b] of [
        [up, down],
        [down, up],
      ] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((r) => mitm.listen(0, '127.0.0.1', () => r()));
    try {
      const client = await clientHandshake(await connect((mitm.address() as net.AddressInfo).port), TOKEN, {
        heartbeatMs: 0,
        deadAfterMs: 0,
        cryptoPool: pool,
      });
      client.on('error', () => undefined);
      const server = await pair.accepted[0];
      const delivered: Buffer[] = [];
      server.on('data', (b: Buffer) => delivered.push(b));
      const err = new Promise<Error>((r) => server.once('error', r));
      client.write(crypto.randomBytes(1 << 20));
      const e = (await err) as NodeJS.ErrnoException;
      assert.strictEqual(e.code, 'EBADRECORD');
      assert.strictEqual(Buffer.concat(delivered).length, 0, 'nothing of a record that fails authentication (or after it) is delivered');
    } finally {
      await new Promise<void>((r) => mitm.close(() => r()));
    }
  });
});
