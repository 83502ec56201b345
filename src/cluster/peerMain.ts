// `strata-peer`: the LAN peer agent (bundled to dist/peer.js, the package's bin). One command on
// each box that lends its accelerators; see docs/cluster.md.
import * as fs from 'fs';
import * as path from 'path';
import { defaultAgentStateDir, PeerAgent } from './agent/agent';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_PER_ADDRESS_PENDING } from './agent/pendingLogins';
import { defaultTokenFile, loadOrCreateToken } from './agent/token';
import { DEFAULT_AGENT_PORT, DEFAULT_DIRECT_RPC_PORT, STRATA_VERSION } from './protocol';
import { TunnelEndpoint } from './coordinator/tunnel';
import { AgentControlClient } from './transport/agentClient';

const USAGE = `strata-peer ${STRATA_VERSION}: lends this machine's accelerators to Strata Coder (llama.cpp RPC), safely.

Usage:
  strata-peer [serve] [options]    run the agent (default)
  strata-peer token [--rotate]     print this machine's token (made on first use) for "Strata: Add Peer"
  strata-peer info --peer HOST[:PORT]            ask an agent for its devices and memory
  strata-peer connect --peer HOST[:PORT] [--listen 127.0.0.1:50052]
                                   a local endpoint tunnelled to that agent's rpc-server, for a
                                   hand-run llama-server/llama-bench --rpc 127.0.0.1:50052
  strata-peer place --peer HOST[:PORT] --role chat --model NAME [--listen 127.0.0.1:8081] [-- llama-server flags]
                                   placement: a whole llama-server on that agent for a role, served
                                   here through the tunnel (prints its URL and API key)
  strata-peer build --backend cpu|cuda|hip|vulkan [--gpu-targets 90|gfx1151]
                                   build rpc-server + llama-server from llama.cpp source
  strata-peer systemd-unit         print a systemd user unit for this install

Options (serve):
  --listen HOST:PORT       where the agent listens (default 0.0.0.0:${DEFAULT_AGENT_PORT})
  --token-file PATH        token file (default ${defaultTokenFile()}); STRATA_PEER_TOKEN overrides
  --rpc-server PATH        ggml-rpc-server to run (default: found like Strata finds llama-server)
  --llama-server PATH      llama-server for placement mode (default: next to rpc-server)
  --threads N              CPU threads for rpc-server's CPU device
  --devices A,B            devices rpc-server offers (e.g. CUDA0,CUDA1; default: all GPUs, else CPU)
  --cache-dir DIR          rpc-server tensor cache: reloads skip sending tensors it already has
  --idle-stop MIN          stop rpc-server after MIN minutes unused (default 10; 0: never)
  --models-dir DIR         allow placement mode: whole llama-servers for models in DIR
  --allow-direct --direct-host ADDR [--direct-port N]
                           also allow direct mode: rpc-server listening on ADDR:N (default ${DEFAULT_DIRECT_RPC_PORT})
                           with NO authentication and NO encryption. Trusted, isolated networks only.
  --state-dir DIR          logs (default ${defaultAgentStateDir()})
  --handshake-timeout-ms N a connection that has not logged in within N ms is dropped and counts as a
                           failed login (default ${DEFAULT_HANDSHAKE_TIMEOUT_MS})
  --max-unauthenticated N  connections from one address (IPv6: one /64) still logging in at once (default ${DEFAULT_PER_ADDRESS_PENDING})

Options (info/connect/place): the token of the agent to reach comes from STRATA_PEER_TOKEN or from
  --token-file PATH (default: this machine's token file). There is no --token flag: a command line
  is visible to every user of the machine.
`;

function parseArgs(argv: string[]): { cmd: string; flags: Map<string, string | true>; rest: string[] } {
  const flags = new Map<string, string | true>();
  const dd = argv.indexOf('--');
  const rest = dd >= 0 ? argv.slice(dd + 1) : [];
  if (dd >= 0) argv = argv.slice(0, dd);
  let cmd = 'serve';
  const bare = new Set(['--allow-direct', '--rotate', '--help', '-h', '--version', '-v', '--quiet']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) {
      if (i === 0) cmd = a;
      else throw new Error(`unexpected argument ${a}`);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(0, eq), a.slice(eq + 1));
    else if (bare.has(a)) flags.set(a, true);
    else if (i + 1 < argv.length) flags.set(a, argv[++i]);
    else throw new Error(`${a} needs a value`);
  }
  return { cmd, flags, rest };
}

function str(flags: Map<string, string | true>, k: string): string | undefined {
  const v = flags.get(k);
  return typeof v === 'string' ? v : undefined;
}

function num(flags: Map<string, string | true>, k: string): number | undefined {
  const v = str(flags, k);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${k} needs a number, not ${v}`);
  return n;
}

function hostPort(s: string, defPort: number): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(s);
  if (!m || !m[1]) throw new Error(`${s} is not HOST[:PORT]`);
  return { host: m[1], port: m[2] ? Number(m[2]) : defPort };
}

async function serve(flags: Map<string, string | true>): Promise<void> {
  const listen = hostPort(str(flags, '--listen') ?? `0.0.0.0:${DEFAULT_AGENT_PORT}`, DEFAULT_AGENT_PORT);
  const tok = loadOrCreateToken({ file: str(flags, '--token-file') });
  if (tok.created) {
    process.stdout.write(
      `New token written to ${tok.file} (keep it secret). On the machine with VS Code, run "Strata: Add Peer" and paste:\n\n  ${tok.token}\n\n`,
    );
  }
  const direct = flags.has('--allow-direct');
  const directHost = str(flags, '--direct-host');
  if (direct && !directHost)
    throw new Error("--allow-direct needs --direct-host <this machine's LAN address>: rpc-server will listen there without authentication.");
  if (!direct && directHost) throw new Error('--direct-host only takes effect with --allow-direct.');
  const stateDir = path.resolve(str(flags, '--state-dir') ?? defaultAgentStateDir());
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const idleMin = num(flags, '--idle-stop');
  if (num(flags, '--max-unauthenticated') === 0) throw new Error('--max-unauthenticated 0 would refuse every connection: give at least 1.');
  const agent = new PeerAgent({
    host: listen.host,
    port: listen.port,
    token: tok.token,
    stateDir,
    rpcServer: str(flags, '--rpc-server'),
    llamaServer: str(flags, '--llama-server'),
    threads: num(flags, '--threads'),
    devices: str(flags, '--devices')
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    cacheDir: str(flags, '--cache-dir') ? path.resolve(str(flags, '--cache-dir')!) : undefined,
    directHost: direct ? directHost : undefined,
    directPort: num(flags, '--direct-port'),
    idleStopMs: idleMin !== undefined ? idleMin * 60_000 : undefined,
    modelsDir: str(flags, '--models-dir') ? path.resolve(str(flags, '--models-dir')!) : undefined,
    heartbeatMs: num(flags, '--heartbeat-ms'),
    deadAfterMs: num(flags, '--dead-after-ms'),
    maxFailures: num(flags, '--max-failures'),
    blockMs: num(flags, '--block-ms'),
    handshakeTimeoutMs: num(flags, '--handshake-timeout-ms'),
    maxPendingPerAddress: num(flags, '--max-unauthenticated'),
  });
  if (direct) {
    process.stderr.write(
      `WARNING: direct mode allowed: rpc-server may listen on ${directHost} with no authentication and no encryption; anyone who can reach that port can read and change what this machine computes and crash it. Use it only on a trusted, isolated network.\n`,
    );
  }
  const stop = (sig: string) => {
    process.stderr.write(`${new Date().toISOString()} ${sig}: stopping\n`);
    void agent.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 8000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await agent.listen();
  // Readiness line for supervisors and tests.
  process.stdout.write(`strata-peer ready\n`);
}

function peerAddress(flags: Map<string, string | true>): { host: string; port: number; token: string } {
  const peer = str(flags, '--peer');
  if (!peer) throw new Error('--peer HOST[:PORT] is required');
  const hp = hostPort(peer, DEFAULT_AGENT_PORT);
  const token = loadOrCreateToken({ file: str(flags, '--token-file'), create: false }).token;
  return { ...hp, token };
}

async function info(flags: Map<string, string | true>): Promise<void> {
  const addr = peerAddress(flags);
  const c = await AgentControlClient.connect(addr);
  try {
    const rtt = await c.ping();
    const i = await c.info(true);
    process.stdout.write(`${JSON.stringify({ rttMs: Math.round(rtt * 100) / 100, ...i }, null, 2)}\n`);
  } finally {
    c.close();
  }
}

async function connect(flags: Map<string, string | true>): Promise<void> {
  const addr = peerAddress(flags);
  const listen = hostPort(str(flags, '--listen') ?? `127.0.0.1:${DEFAULT_DIRECT_RPC_PORT}`, DEFAULT_DIRECT_RPC_PORT);
  if (listen.host !== '127.0.0.1' && listen.host !== 'localhost')
    throw new Error('--listen must be on 127.0.0.1: the tunnel endpoint has no authentication of its own.');
  // A control channel holds rpc-server up (and tells us when the peer goes away).
  const ctl = await AgentControlClient.connect(addr);
  await ctl.request('rpc.start', { mode: 'tunnel' }, 120_000);
  const t = new TunnelEndpoint(addr, { open: 'rpc' }, { log: (m) => process.stderr.write(`${m}\n`) });
  const port = await t.listen(listen.port);
  process.stdout.write(`tunnel ready: --rpc 127.0.0.1:${port} reaches ${addr.host}:${addr.port}\n`);
  ctl.on('close', (err) => {
    process.stderr.write(`${err?.message ?? 'control channel closed'}\n`);
    process.exit(1);
  });
  const stop = () => {
    void t.close();
    ctl.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function place(flags: Map<string, string | true>, rest: string[]): Promise<void> {
  const addr = peerAddress(flags);
  const role = str(flags, '--role') ?? 'chat';
  const model = str(flags, '--model');
  if (!model) throw new Error("--model NAME (a GGUF file in the agent's --models-dir) is required");
  const listen = hostPort(str(flags, '--listen') ?? '127.0.0.1:0', 0);
  if (listen.host !== '127.0.0.1' && listen.host !== 'localhost') throw new Error('--listen must be on 127.0.0.1.');
  const ctl = await AgentControlClient.connect(addr);
  const st = await ctl.request('server.start', { role, model, args: rest }, 0);
  const t = new TunnelEndpoint(addr, { open: 'server', role }, { log: (m) => process.stderr.write(`${m}\n`) });
  const port = await t.listen(listen.port);
  process.stdout.write(`${JSON.stringify({ role, url: `http://127.0.0.1:${port}`, apiKey: st.apiKey })}\n`);
  const stop = () => {
    void ctl.request('server.stop', { role }).finally(() => {
      void t.close();
      ctl.close();
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  ctl.on('close', (err) => {
    process.stderr.write(`${err?.message ?? 'control channel closed'}\n`);
    process.exit(1);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function build(flags: Map<string, string | true>): Promise<void> {
  const { ensureLlamaBuild } = await import('../daemon/installer/llamaBuild');
  const backend = (str(flags, '--backend') ?? 'cpu') as 'cpu' | 'cuda' | 'hip' | 'vulkan';
  const targets = str(flags, '--gpu-targets')?.split(',').filter(Boolean);
  const b = await ensureLlamaBuild({
    backend,
    ...(targets ? { gpuTargets: targets } : {}),
    onProgress: (p) => process.stderr.write(`${p.message}${p.percent !== undefined ? ` ${p.percent}%` : ''}\n`),
  });
  process.stdout.write(`rpc-server: ${b.rpcServerPath}\nllama-server: ${b.serverPath}\n`);
}

function systemdUnit(): void {
  const node = process.execPath;
  const script = path.resolve(process.argv[1] ?? 'strata-peer');
  process.stdout.write(`# ~/.config/systemd/user/strata-peer.service
# systemctl --user daemon-reload && systemctl --user enable --now strata-peer
# loginctl enable-linger $USER   # keep it running while nobody is logged in
[Unit]
Description=Strata Coder peer agent (llama.cpp rpc-server behind an authenticated tunnel)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=${node} ${script} serve --listen 0.0.0.0:${DEFAULT_AGENT_PORT} --idle-stop 10
Restart=on-failure
RestartSec=5
# The token is read from ~/.config/strata-peer/token (0600); rpc-server runs as this user.
NoNewPrivileges=yes
PrivateTmp=yes

[Install]
WantedBy=default.target
`);
}

async function main(): Promise<void> {
  const { cmd, flags, rest } = parseArgs(process.argv.slice(2));
  if (flags.has('--token')) {
    throw new Error(
      '--token is not accepted because every user of this machine can read a command line: put the token in STRATA_PEER_TOKEN or in a 0600 file given with --token-file.',
    );
  }
  if (flags.has('--version') || flags.has('-v')) {
    process.stdout.write(`strata-peer ${STRATA_VERSION}\n`);
    return;
  }
  if (flags.has('--help') || flags.has('-h') || cmd === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  switch (cmd) {
    case 'serve':
      return serve(flags);
    case 'token': {
      const t = loadOrCreateToken({ file: str(flags, '--token-file'), rotate: flags.has('--rotate') });
      process.stdout.write(`${t.token}\n`);
      if (t.created) process.stderr.write(`(new token written to ${t.file}; restart the agent if it runs)\n`);
      return;
    }
    case 'info':
      return info(flags);
    case 'connect':
      return connect(flags);
    case 'place':
      return place(flags, rest);
    case 'build':
      return build(flags);
    case 'systemd-unit':
      return systemdUnit();
    default:
      throw new Error(`unknown command ${cmd}; see strata-peer --help`);
  }
}

main().catch((e: Error) => {
  process.stderr.write(`strata-peer: ${e.message}\n`);
  process.exit(2);
});
