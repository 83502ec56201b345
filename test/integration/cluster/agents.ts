import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newToken } from '../../../src/cluster/transport/peerHandshake';
import { getLlamaBinaries } from '../../harness/llamaBinaries';
import { NetnsLab, netnsSupport, PeerHost } from '../../harness/netns';
import { skipBecause } from '../../harness/skips';
import { ManagedProcess, waitFor } from '../../harness/processes';

// The real strata-peer bundle (built here with the project's esbuild settings, so a stale
// dist/ cannot fool the tests), run as a separate host in a network namespace.

let bundled: Promise<string> | undefined;

export function bundlePeer(): Promise<string> {
  bundled ??= (async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-peer-bundle-')), 'peer.js');
    await esbuild.build({
      entryPoints: [path.resolve(__dirname, '../../../src/cluster/peerMain.ts')],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile: out,
      logLevel: 'warning',
      banner: { js: '#!/usr/bin/env node' },
      external: ['vscode'],
    });
    return out;
  })();
  return bundled;
}

export interface RunningAgent {
  host: PeerHost;
  token: string;
  port: number;
  proc: ManagedProcess;
  stateDir: string;
  /** The agent's own log (stderr) plus rpc-server's log file. */
  logText(): string;
  stop(): Promise<void>;
}

export interface AgentStartOptions {
  port?: number;
  direct?: boolean;
  directPort?: number;
  idleStopMin?: number;
  heartbeatMs?: number;
  deadAfterMs?: number;
  extra?: string[];
}

export async function startAgent(host: PeerHost, opts: AgentStartOptions = {}): Promise<RunningAgent> {
  const peerJs = await bundlePeer();
  const bins = await getLlamaBinaries();
  const port = opts.port ?? 7399;
  const directPort = opts.directPort ?? 50052;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-peer-${host.index}-`));
  const token = newToken();
  const args = [
    peerJs,
    'serve',
    '--listen',
    `${host.bindAddr}:${port}`,
    '--state-dir',
    stateDir,
    '--rpc-server',
    bins.rpcServerPath,
    '--threads',
    '1',
    '--idle-stop',
    String(opts.idleStopMin ?? 10),
    '--heartbeat-ms',
    String(opts.heartbeatMs ?? 500),
    '--dead-after-ms',
    String(opts.deadAfterMs ?? 3000),
    ...(opts.direct ? ['--allow-direct', '--direct-host', host.bindAddr, '--direct-port', String(directPort)] : []),
    ...(opts.extra ?? []),
  ];
  const proc = host.exec(process.execPath, args, { env: { ...process.env, STRATA_PEER_TOKEN: token, HOME: stateDir } });
  await waitFor(`strata-peer in ${host.ns}`, async () => (proc.logText().includes('strata-peer ready') ? true : undefined), {
    timeoutMs: 20_000,
    proc,
    intervalMs: 50,
  });
  await host.expose(opts.direct ? [port, directPort] : [port]);
  return {
    host,
    token,
    port,
    proc,
    stateDir,
    logText: () => `${proc.logText()}\n--- rpc-server.log ---\n${readOr(path.join(stateDir, 'rpc-server.log'))}`,
    stop: () => proc.stop(3000),
  };
}

function readOr(f: string): string {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}

/** before() body: skip with the reason when this machine cannot run namespaces. */
export async function labOrSkip(ctx: Mocha.Context): Promise<NetnsLab> {
  const s = await netnsSupport();
  if (!s.ok) skipBecause(ctx, `needs network namespaces: ${s.reason}`);
  return new NetnsLab(s);
}
