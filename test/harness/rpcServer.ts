import * as net from 'net';
import { pickFreePort } from '../../src/daemon/ports';
import { getLlamaBinaries } from './llamaBinaries';
import { ManagedProcess, startProcess, waitFor } from './processes';

// Starts llama.cpp's real rpc-server (ggml-rpc-server) as a cluster peer on loopback. It has no
// authentication, which is why it only ever binds 127.0.0.1 here.

export interface RunningRpcServer {
  host: string;
  port: number;
  /** host:port as llama-server's --rpc takes it. */
  endpoint: string;
  pid: number;
  proc: ManagedProcess;
  logText(): string;
  stop(): Promise<void>;
}

export async function startRpcServer(opts: { threads?: number } = {}): Promise<RunningRpcServer> {
  const bins = await getLlamaBinaries();
  const port = await pickFreePort();
  const host = '127.0.0.1';
  const proc = startProcess(bins.rpcServerPath, ['-H', host, '-p', String(port), '-t', String(opts.threads ?? 1)]);
  await waitFor(
    'rpc-server listening',
    () =>
      new Promise<true | undefined>((resolve) => {
        const s = net.connect({ host, port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(undefined));
      }),
    { timeoutMs: 20_000, proc },
  );
  return { host, port, endpoint: `${host}:${port}`, pid: proc.pid, proc, logText: proc.logText, stop: () => proc.stop() };
}
