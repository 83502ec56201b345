// What the peer tunnel costs per exchange, without a GPU or a model: the exact topology of a
// layer split (llama-server → the sidecar's tunnel endpoint → the agent → rpc-server), with an
// echo server standing in for rpc-server, each in its own process. An "exchange" writes N bytes
// and waits for N bytes back: a pp512 ubatch of a 32B model sends ~10 MiB of hidden state across
// and back; a generated token sends ~20 KiB; a bare RPC command is ~100 bytes.
//
//   npx tsx bench/cluster-tunnel-throughput.ts [--reps 30] [--profile FILE.cpuprofile]
//
// Prints median ms per exchange for direct (client → echo), the same hops through two plain
// relays (no crypto), and the tunnel (client → endpoint → agent-side handshake + splice → echo):
// the difference splits the tunnel's cost into extra hops and encryption. The agent side here is the agent's own
// code path (serverHandshake, the open line, splice) without the rest of the agent. First line:
// what one core seals with AES-256-GCM in the tunnel's record size (the crypto's ceiling here).
// --profile: a V8 CPU profile of this process (the sidecar's tunnel end and the bench's client)
// during the tunnel's 10 MiB exchanges; bench/cpu-profile-shares.ts turns it into shares.
import { ChildProcess, fork } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import { Session } from 'inspector/promises';
import * as net from 'net';
import { splice } from '../src/cluster/net/splice';
import { TunnelEndpoint } from '../src/cluster/coordinator/tunnel';
import { readLine, writeJsonLine } from '../src/cluster/transport/lines';
import { MAX_RECORD } from '../src/cluster/transport/secureChannel';
import { newToken, serverHandshake, tokenKey } from '../src/cluster/transport/peerHandshake';

const role = process.argv[2];

function listen(srv: net.Server): Promise<number> {
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port)));
}

async function echo(): Promise<void> {
  const srv = net.createServer((s) => {
    s.setNoDelay(true);
    s.pipe(s);
  });
  process.send!({ port: await listen(srv) });
}

async function agentSide(echoPort: number, token: string): Promise<void> {
  const key = tokenKey(token);
  const srv = net.createServer(async (s) => {
    const ch = await serverHandshake(s, key, { heartbeatMs: 0, deadAfterMs: 0 });
    await readLine(ch, { timeoutMs: 5000, what: 'open' });
    writeJsonLine(ch, { ok: true });
    const up = net.connect(echoPort, '127.0.0.1');
    up.setNoDelay(true);
    up.once('connect', () => splice(ch, up, () => undefined));
  });
  process.send!({ port: await listen(srv) });
}

/** A plain TCP relay (no crypto): with two of them in a row, the tunnel's hops without its encryption. */
async function relay(targetPort: number): Promise<void> {
  const srv = net.createServer((s) => {
    s.setNoDelay(true);
    const up = net.connect(targetPort, '127.0.0.1');
    up.setNoDelay(true);
    up.once('connect', () => splice(s, up, () => undefined));
  });
  process.send!({ port: await listen(srv) });
}

function child(args: string[]): Promise<{ proc: ChildProcess; port: number }> {
  const proc = fork(__filename, args, { execArgv: process.execArgv, stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    proc.once('message', (m: { port: number }) => resolve({ proc, port: m.port }));
    proc.once('exit', (c) => reject(new Error(`${args[0]} exited ${c}`)));
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

/** ms per exchange of n bytes out and n back, median over reps (after 3 warm-ups). */
async function exchange(s: net.Socket, n: number, reps: number): Promise<number> {
  const payload = Buffer.alloc(n, 0x5a);
  const times: number[] = [];
  for (let i = 0; i < reps + 3; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      let got = 0;
      const on = (b: Buffer) => {
        got += b.length;
        if (got >= n) {
          s.off('data', on);
          resolve();
        }
      };
      s.on('data', on);
      s.write(payload);
    });
    if (i >= 3) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** MB/s one core seals with AES-256-GCM, in records of the tunnel's size (256 MiB in all, best of 3). */
function aesGcmMBps(): number {
  const key = crypto.randomBytes(32);
  const record = Buffer.alloc(MAX_RECORD, 0x5a);
  const total = 256 << 20;
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    for (let n = 0; n < total; n += MAX_RECORD) {
      const c = crypto.createCipheriv('aes-256-gcm', key, crypto.randomBytes(12));
      c.update(record);
      c.final();
      c.getAuthTag();
    }
    best = Math.min(best, performance.now() - t0);
  }
  return total / 1e6 / (best / 1000);
}

/** Runs `fn` under V8's sampling profiler (100 µs) and writes the profile to `file`. */
async function profiled<T>(file: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (!file) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    fs.writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const reps = Number(flag('--reps')) || 30;
  const profile = flag('--profile');
  console.log(`AES-256-GCM on one core, ${MAX_RECORD / 1024} KiB records: ${aesGcmMBps().toFixed(0)} MB/s`);
  const token = newToken();
  const e = await child(['echo']);
  const a = await child(['agent', String(e.port), token]);
  // The sidecar's end runs in its own process in real life too (the daemon); here the bench's.
  const t = new TunnelEndpoint({ host: '127.0.0.1', port: a.port, token, label: 'bench' }, { open: 'rpc' }, { heartbeatMs: 0, deadAfterMs: 0 });
  await t.listen();
  const r2 = await child(['relay', String(e.port)]);
  const r1 = await child(['relay', String(r2.port)]);
  const direct = await connect(e.port);
  const relayed = await connect(r1.port);
  const tunnel = await connect(t.localPort);
  await exchange(tunnel, 16, 1);
  const sizes: Array<[string, number]> = [
    ['RPC command (128 B)', 128],
    ['hidden state of 1 token, 32B (20 KiB)', 20 * 1024],
    ['1 MiB', 1 << 20],
    ['pp512 ubatch, 32B (10 MiB)', 10 << 20],
  ];
  console.log(`node ${process.version}, ${reps} reps, median ms per exchange (n bytes out, n back)`);
  console.log('| exchange | direct ms | same hops, no crypto ms | tunnel ms | tunnel extra ms | of it: hops / crypto ms |');
  console.log('|---|---|---|---|---|---|');
  for (const [label, n] of sizes) {
    const d = await exchange(direct, n, reps);
    const rl = await exchange(relayed, n, reps);
    const tt = await (n === 10 << 20 ? profiled(profile, () => exchange(tunnel, n, reps)) : exchange(tunnel, n, reps));
    console.log(
      `| ${label} | ${d.toFixed(3)} | ${rl.toFixed(3)} | ${tt.toFixed(3)} | ${(tt - d).toFixed(3)} | ${(rl - d).toFixed(3)} / ${(tt - rl).toFixed(3)} |`,
    );
  }
  relayed.destroy();
  r1.proc.kill();
  r2.proc.kill();
  direct.destroy();
  tunnel.destroy();
  await t.close();
  e.proc.kill();
  a.proc.kill();
}

if (role === 'echo') void echo();
else if (role === 'relay') void relay(Number(process.argv[3]));
else if (role === 'agent') void agentSide(Number(process.argv[3]), process.argv[4]);
else
  void main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
