import * as assert from 'assert';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import WebSocket from 'ws';
import { CloseCode, PROTOCOL_VERSION } from '../../../src/core/protocol';
import { SidecarClient, SidecarIncompatibleError } from '../../../src/core/daemonClient';
import { readSidecarLock, sidecarLockPath } from '../../../src/core/daemonClient/lockFile';
import { isPidAlive } from '../../../src/core/daemonClient/processInfo';
import { cleanupStateDir, connectTestSidecar, makeStateDir, sidecarBundle, TEST_DAEMON_CONFIG, waitUntil } from '../../harness/sidecar';
import { linuxOnly } from '../../harness/skips';

// The daemon without a model: finding it, starting it once, refusing strangers, leaving when
// nobody needs it, making way for another protocol version, and clients coming back after it dies.

/** Live daemon processes of this state dir, from /proc (so that a stray second one shows). */
function daemonsOf(stateDir: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('sidecar.js')) && argv.includes(stateDir) && isPidAlive(Number(d))) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

interface RawResult {
  code: number;
  reason: string;
  messages: string[];
}

/** A raw WebSocket conversation with the daemon, to see exactly what a stranger gets. */
function rawConnect(port: number, opts: { headers?: Record<string, string>; hello?: unknown; waitMs?: number }): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: opts.headers ?? {} });
    const messages: string[] = [];
    const t = setTimeout(() => {
      ws.terminate();
      reject(new Error('the daemon neither answered nor closed'));
    }, opts.waitMs ?? 10_000);
    ws.on('open', () => {
      if (opts.hello !== undefined) ws.send(JSON.stringify(opts.hello));
    });
    ws.on('message', (d) => messages.push(d.toString()));
    ws.on('error', () => undefined);
    ws.on('close', (code, reason) => {
      clearTimeout(t);
      resolve({ code, reason: reason.toString(), messages });
    });
  });
}

describe('sidecar daemon', function () {
  this.timeout(120_000);
  linuxOnly("the sidecar daemon's process handling (process groups, /proc)");
  let stateDir: string;
  const clients: SidecarClient[] = [];
  const extraProcs: ChildProcess[] = [];

  beforeEach(() => {
    stateDir = makeStateDir();
  });
  afterEach(async () => {
    for (const p of extraProcs.splice(0))
      try {
        p.kill('SIGKILL');
      } catch {
        /* gone */
      }
    await cleanupStateDir(stateDir, clients.splice(0));
  });

  const connect = async (extra: Parameters<typeof connectTestSidecar>[1] = {}) => {
    const c = await connectTestSidecar(stateDir, extra);
    clients.push(c);
    return c;
  };

  it('starts detached, writes a 0600 lock file with pid, port, token, protocol and start time', async () => {
    const c = await connect();
    const lock = readSidecarLock(stateDir)!;
    assert.strictEqual(fs.statSync(sidecarLockPath(stateDir)).mode & 0o777, 0o600);
    assert.strictEqual(fs.statSync(stateDir).mode & 0o777, 0o700);
    assert.strictEqual(lock.pid, c.lastKnownStatus!.daemon.pid);
    assert.strictEqual(lock.protocolVersion, PROTOCOL_VERSION);
    assert.ok(lock.port > 0 && lock.token.length >= 32 && lock.startedAt > 0);
    assert.notStrictEqual(lock.pid, process.pid);
    // Its own session: signals to this process group (a window's terminal) do not reach it.
    const stat = fs.readFileSync(`/proc/${lock.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    assert.strictEqual(Number(fields[3]), lock.pid, 'the daemon should lead its own session');
    assert.strictEqual(c.lastKnownStatus!.server.phase, 'stopped');
  });

  it('racing starts give exactly one daemon', async () => {
    const all = await Promise.all([1, 2, 3, 4].map(() => connect()));
    const pids = new Set(all.map((c) => c.lastKnownStatus!.daemon.pid));
    assert.strictEqual(pids.size, 1, `clients reached ${[...pids].join(', ')}`);
    assert.deepStrictEqual(daemonsOf(stateDir), [...pids]);
    const st = await all[0].status();
    assert.strictEqual(st.daemon.clients, 4);
  });

  it('a daemon started beside a running one exits and leaves the first in charge', async () => {
    const script = await sidecarBundle();
    const start = () => {
      const p = spawn(process.execPath, [script, '--state-dir', stateDir, '--config', JSON.stringify(TEST_DAEMON_CONFIG)], { stdio: 'ignore' });
      extraProcs.push(p);
      return new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    };
    // Both at once, bypassing the client's start mutex: the daemon's own claim must hold.
    const a = start();
    const b = start();
    const first = await Promise.race([a, b]);
    assert.strictEqual(first, 3, 'the loser exits with status 3');
    await waitUntil('one daemon', () => daemonsOf(stateDir).length === 1, 5000);
    const lock = readSidecarLock(stateDir)!;
    assert.deepStrictEqual(daemonsOf(stateDir), [lock.pid]);
  });

  it('refuses wrong or missing tokens with one close code, says nothing, and logs it', async () => {
    const c = await connect({ daemonConfig: { helloTimeoutMs: 1000 } });
    const { port, token } = readSidecarLock(stateDir)!;
    const hello = { type: 'hello', protocolVersion: PROTOCOL_VERSION };
    const attempts: [string, Parameters<typeof rawConnect>[1]][] = [
      ['no token', { hello }],
      ['wrong token in hello', { hello: { ...hello, token: 'guess' } }],
      ['wrong bearer header', { headers: { authorization: 'Bearer guess' }, hello }],
      ['right token from a browser', { headers: { origin: 'http://evil.example' }, hello: { ...hello, token } }],
      ['silence', {}],
      ['garbage first frame', { hello: 'not a frame' }],
    ];
    for (const [what, opts] of attempts) {
      const r = await rawConnect(port, opts);
      assert.strictEqual(r.code, CloseCode.Unauthorized, what);
      assert.strictEqual(r.reason, '', `${what}: the reason must not explain`);
      assert.deepStrictEqual(r.messages, [], `${what}: nothing may be sent before authentication`);
    }
    const ok = await rawConnect(port, { hello: { ...hello, token }, waitMs: 1500 }).catch(() => undefined);
    assert.strictEqual(ok, undefined, 'the right token in the hello frame must be accepted (the connection stays open)');
    const log = (await c.logs('daemon', 500)).lines.filter((l) => l.includes('refused control connection'));
    assert.strictEqual(log.length, attempts.length, log.join('\n'));
    assert.ok(!log.some((l) => l.includes(token)), 'the token must never be logged');
  });

  it('cuts sockets that never say hello at the deadline, holds few at a time, and still lets a window in', async () => {
    const helloTimeoutMs = 1500;
    const maxPending = 16;
    await connect({ daemonConfig: { helloTimeoutMs, maxPendingConnections: maxPending } });
    const { pid, port } = readSidecarLock(stateDir)!;
    const fds = () => fs.readdirSync(`/proc/${pid}/fd`).length;
    const before = fds();
    // Another local user floods the port: bare TCP sockets that send nothing, and WebSocket
    // upgrades that then say nothing and ignore the close frame.
    const upgrade = `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.alloc(16, 1).toString('base64')}\r\n\r\n`;
    const t0 = Date.now();
    const closedAt: number[] = [];
    const silent = await Promise.all(
      Array.from(
        { length: 300 },
        (_, i) =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect({ host: '127.0.0.1', port }, () => {
              if (i % 10 === 0) s.write(upgrade);
              resolve(s);
            });
            s.on('data', () => undefined);
            s.on('error', () => undefined);
            s.once('error', reject);
            s.on('close', () => closedAt.push(Date.now() - t0));
          }),
      ),
    );
    try {
      await new Promise((r) => setTimeout(r, 300));
      const held = fds() - before;
      assert.ok(
        held <= maxPending + 4,
        `the daemon holds ${held} more descriptors with ${silent.length} silent sockets open (at most ${maxPending} may wait for a hello)`,
      );
      const c = await connect();
      assert.strictEqual((await c.status()).daemon.clients, 2, 'a window with the token must get in during the flood');
      await waitUntil('every silent socket to be cut', () => closedAt.length === silent.length, helloTimeoutMs + 3000);
      const last = Math.max(...closedAt);
      assert.ok(last >= helloTimeoutMs - 200, `the last silent socket went after ${last} ms, before its deadline`);
      assert.ok(last <= helloTimeoutMs + 2500, `the last silent socket went after ${last} ms`);
      assert.ok(c.connected, 'the window stays connected');
    } finally {
      for (const s of silent) s.destroy();
    }
  });

  it('exits when no client has been connected for the idle time, and removes its lock', async () => {
    const c = await connect({ daemonConfig: { idleExitMs: 1500 } });
    const pid = c.lastKnownStatus!.daemon.pid;
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(isPidAlive(pid), 'it must stay while a client is connected');
    c.close();
    const ms = await waitUntil('idle exit', () => !isPidAlive(pid), 10_000);
    assert.ok(ms >= 1000, `exited after ${ms} ms, before the idle time`);
    assert.ok(!fs.existsSync(sidecarLockPath(stateDir)));
  });

  it('clients reconnect with backoff to a new daemon after kill -9', async () => {
    const a = await connect();
    const b = await connect();
    const old = a.lastKnownStatus!.daemon.pid;
    const back = (c: SidecarClient) => new Promise<number>((r) => c.once('connected', (s) => r(s.daemon.pid)));
    const ra = back(a);
    const rb = back(b);
    const t0 = Date.now();
    process.kill(old, 'SIGKILL');
    const [pa, pb] = await Promise.all([ra, rb]);
    const ms = Date.now() - t0;
    assert.notStrictEqual(pa, old);
    assert.strictEqual(pa, pb, 'both windows must end up on the same new daemon');
    assert.deepStrictEqual(daemonsOf(stateDir), [pa]);
    assert.strictEqual((await a.status()).daemon.clients, 2);
    console.log(`      (both clients back on a new daemon ${ms} ms after kill -9)`);
  });

  describe('another protocol version', () => {
    /** A daemon that claims protocol 0, as an older Strata would have started. */
    const startOldDaemon = async (): Promise<number> => {
      const p = spawn(
        process.execPath,
        [await sidecarBundle(), '--state-dir', stateDir, '--config', JSON.stringify({ ...TEST_DAEMON_CONFIG, protocolVersion: 0 })],
        { stdio: 'ignore', detached: true },
      );
      extraProcs.push(p);
      await waitUntil('the old daemon', () => readSidecarLock(stateDir)?.pid === p.pid, 30_000);
      return p.pid!;
    };
    /** An old window, connected to the old daemon with its own protocol. */
    const oldClient = (): Promise<WebSocket> =>
      new Promise((resolve, reject) => {
        const { port, token } = readSidecarLock(stateDir)!;
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${token}` } });
        ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', protocolVersion: 0 })));
        ws.once('message', () => resolve(ws));
        ws.on('error', reject);
      });

    it('is replaced at once when nobody uses it', async () => {
      const old = await startOldDaemon();
      const c = await connect();
      assert.notStrictEqual(c.lastKnownStatus!.daemon.pid, old);
      assert.strictEqual(c.lastKnownStatus!.daemon.protocolVersion, PROTOCOL_VERSION);
      await waitUntil('the old daemon to exit', () => !isPidAlive(old), 5000);
    });

    it('waits for its last client, then is replaced; or is replaced now on confirmation', async () => {
      const old = await startOldDaemon();
      const ws = await oldClient();
      await assert.rejects(connect({ replaceWaitMs: 1000 }), (e: Error) => e instanceof SidecarIncompatibleError && /other VS Code windows/.test(e.message));
      assert.ok(isPidAlive(old), 'it must not be taken from a window that uses it');
      ws.close();
      await waitUntil('the old daemon to retire', () => !isPidAlive(old), 5000);
      const c = await connect();
      assert.strictEqual(c.lastKnownStatus!.daemon.protocolVersion, PROTOCOL_VERSION);
      c.close();
      clients.splice(0);
      await cleanupStateDir(stateDir);
      stateDir = makeStateDir();

      const old2 = await startOldDaemon();
      const ws2 = await oldClient();
      const closed = new Promise<number>((r) => ws2.on('close', (code) => r(code)));
      const c2 = await connect({ forceReplace: true });
      assert.strictEqual(c2.lastKnownStatus!.daemon.protocolVersion, PROTOCOL_VERSION);
      assert.strictEqual(await closed, CloseCode.ShuttingDown);
      assert.ok(!isPidAlive(old2));
    });
  });
});
