import * as assert from 'assert';
import * as crypto from 'crypto';
import * as net from 'net';
import { CryptoPool } from '../../../src/cluster/transport/cryptoPool';
import { clientHandshake, serverHandshake, tokenKey } from '../../../src/cluster/transport/peerHandshake';
import { SecureChannel } from '../../../src/cluster/transport/secureChannel';

// How a tunnel ends, over real loopback TCP with a man in the middle who sees whole records: only
// the sender's authenticated CLOSE record makes an end; a FIN alone (a cut on the path), a
// tampered or forged CLOSE is an error. With and without the crypto threads.

const TOKEN = 'sp1_end-test-token-0123456789abcdef';
/** Client bytes before the first record: hello (4 + 1 + 32) and login proof (32). */
const HANDSHAKE_BYTES = 69;

type LastRecord = 'forward' | 'drop' | 'flip' | 'forge' | 'replay-first';

interface Relay {
  port: number;
  close(): Promise<void>;
}

/**
 * Forwards everything, but holds back each client→agent record until the next one arrives; when
 * the client's FIN comes, the held one (the CLOSE record, always last) is treated as `last` says
 * and the FIN is passed on.
 */
async function recordRelay(upstreamPort: number, last: LastRecord): Promise<Relay> {
  const socks = new Set<net.Socket>();
  // Half-open both ways, like TCP itself: each FIN is passed on when the relay decides.
  const srv = net.createServer({ allowHalfOpen: true }, (down) => {
    const up = net.connect({ host: '127.0.0.1', port: upstreamPort, allowHalfOpen: true });
    socks.add(down).add(up);
    let buf = Buffer.alloc(0);
    let passed = 0;
    let held: Buffer | undefined;
    let first: Buffer | undefined;
    up.on('data', (b: Buffer) => down.write(b));
    up.on('end', () => down.end());
    down.on('data', (b: Buffer) => {
      const raw = Math.min(b.length, HANDSHAKE_BYTES - passed);
      if (raw > 0) up.write(b.subarray(0, raw));
      passed += raw;
      buf = Buffer.concat([buf, b.subarray(raw)]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const rec = buf.subarray(0, 4 + buf.readUInt32BE(0));
        buf = buf.subarray(rec.length);
        first ??= Buffer.from(rec);
        if (held) up.write(held);
        held = Buffer.from(rec);
      }
    });
    down.on('end', () => {
      if (held && last !== 'drop') {
        if (last === 'flip') held[held.length - 1] ^= 0x01; // in the tag
        if (last === 'forge') held = forgedClose();
        if (last === 'replay-first') held = first!;
        up.write(held);
      }
      up.end();
    });
    for (const [a, b] of [
      [up, down],
      [down, up],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** A CLOSE record (type 2, no reason) sealed under a key the attacker made up. */
function forgedClose(): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1 + 16, 0);
  const c = crypto.createCipheriv('aes-256-gcm', crypto.randomBytes(32), crypto.randomBytes(12));
  c.setAAD(header);
  return Buffer.concat([header, c.update(Buffer.of(2)), c.final(), c.getAuthTag()]);
}

interface Ending {
  data: Buffer;
  ended: boolean;
  error?: NodeJS.ErrnoException;
  reason?: string;
}

/** Everything the agent side read, and how its channel finished. */
function collect(ch: SecureChannel): Promise<Ending> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let ended = false;
    let error: NodeJS.ErrnoException | undefined;
    ch.on('data', (b: Buffer) => parts.push(b));
    ch.on('end', () => {
      ended = true;
    });
    ch.on('error', (e) => {
      error = e;
    });
    ch.on('close', () => resolve({ data: Buffer.concat(parts), ended, error, reason: ch.remoteCloseReason }));
  });
}

for (const threads of [0, 2]) {
  describe(`cluster secure channel: how a stream ends${threads ? ' (crypto threads)' : ''}`, () => {
    const pool = threads ? new CryptoPool(threads) : null;
    let agent: net.Server;
    let agentPort: number;
    let accepted: Array<Promise<SecureChannel>>;
    let relay: Relay | undefined;

    beforeEach(async () => {
      accepted = [];
      agent = net.createServer((s) => {
        const p = serverHandshake(s, tokenKey(TOKEN), { failureDelayMs: 0, heartbeatMs: 0, deadAfterMs: 0, cryptoPool: pool });
        p.catch(() => undefined);
        accepted.push(p);
      });
      await new Promise<void>((r) => agent.listen(0, '127.0.0.1', () => r()));
      agentPort = (agent.address() as net.AddressInfo).port;
    });
    afterEach(async () => {
      await relay?.close();
      relay = undefined;
      await new Promise<void>((r) => agent.close(() => r()));
    });

    /** Client → relay → agent; the client writes `data` (big enough for the threads) and ends. */
    const sendThrough = async (last: LastRecord, end: (ch: SecureChannel) => void = (ch) => ch.end()) => {
      relay = await recordRelay(agentPort, last);
      const sock = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: relay!.port }, () => resolve(s));
        s.once('error', reject);
      });
      const client = await clientHandshake(sock, TOKEN, { heartbeatMs: 0, deadAfterMs: 0, cryptoPool: pool });
      const clientDone = collect(client);
      const server = await accepted[0];
      const done = collect(server);
      const data = crypto.randomBytes(1 << 20);
      client.write(data);
      end(client);
      return { data, ending: await done, clientEnding: await clientDone };
    };

    it('a clean end: every byte, then the end, no error', async () => {
      const { data, ending, clientEnding } = await sendThrough('forward');
      assert.strictEqual(ending.error, undefined, ending.error?.message);
      assert.ok(ending.ended, 'no end');
      assert.ok(ending.data.equals(data), 'bytes differ');
      // The agent's side answers with its own CLOSE: the writer sees a clean end too.
      assert.strictEqual(clientEnding.error, undefined, clientEnding.error?.message);
      assert.ok(clientEnding.ended, "no end on the writer's side");
    });

    it('a close with a reason: the reason arrives with the end', async () => {
      const { ending } = await sendThrough('forward', (ch) => ch.closeWithReason('model unloaded'));
      assert.strictEqual(ending.error, undefined, ending.error?.message);
      assert.ok(ending.ended);
      assert.strictEqual(ending.reason, 'model unloaded');
    });

    it('a FIN without the close record (the stream cut short on the path) is an error, not an end', async () => {
      const { data, ending } = await sendThrough('drop');
      assert.ok(!ending.ended, 'the receiver took a cut for a clean end');
      assert.strictEqual(ending.error?.code, 'ECONNCUT', ending.error?.message);
      assert.match(ending.error!.message, /cut the connection without closing it/);
      // Only the close record was taken away: everything before it still arrived, in order.
      assert.ok(ending.data.equals(data), 'bytes before the cut differ');
    });

    for (const [what, how] of [
      ['tampered', 'flip'],
      ['forged (wrong key)', 'forge'],
      ['replayed (an earlier record)', 'replay-first'],
    ] as const) {
      it(`a ${what} close record is an error`, async () => {
        const { ending } = await sendThrough(how);
        assert.ok(!ending.ended, 'the receiver took a bad close record for a clean end');
        assert.strictEqual(ending.error?.code, 'EBADRECORD', ending.error?.message);
      });
    }
  });
}
