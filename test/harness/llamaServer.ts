import * as crypto from 'crypto';
import { SecretFile, writeSecretFile } from '../../src/core/secretFile';
import { pickFreePort } from '../../src/daemon/ports';
import { getLlamaBinaries } from './llamaBinaries';
import { ManagedProcess, startProcess, tail, waitFor } from './processes';

// Starts the real llama-server (built from llama.cpp source by the installer) for tests.
// It always listens on loopback and always requires an API key, from a 0600 file as in the product.

export interface RunningLlamaServer {
  url: string;
  apiKey: string;
  port: number;
  pid: number;
  proc: ManagedProcess;
  logText(): string;
  stop(): Promise<void>;
}

export interface LlamaServerOptions {
  model: string;
  extraArgs?: string[];
  apiKey?: string;
  /** Context size; small by default so tests stay fast on 2 cores. */
  ctx?: number;
  readyTimeoutMs?: number;
  /** Another llama-server than the default CPU build (the Vulkan build, say). */
  serverPath?: string;
  /** Added to this process's environment (GGML_VK_VISIBLE_DEVICES, say). */
  env?: Record<string, string>;
}

function baseArgs(model: string, port: number, keyFile: SecretFile, ctx: number): string[] {
  return [
    '-m',
    model,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--api-key-file',
    keyFile.path,
    '-c',
    String(ctx),
    // Random Q4_K weights crash the CPU repacking path; our test weights are F16 but be safe.
    '--no-repack',
    '-t',
    '2',
    '--no-webui',
  ];
}

export async function startLlamaServer(opts: LlamaServerOptions): Promise<RunningLlamaServer> {
  const serverPath = opts.serverPath ?? (await getLlamaBinaries()).serverPath;
  const port = await pickFreePort();
  const apiKey = opts.apiKey ?? crypto.randomBytes(16).toString('hex');
  const keyFile = writeSecretFile(apiKey);
  const args = [...baseArgs(opts.model, port, keyFile, opts.ctx ?? 2048), ...(opts.extraArgs ?? [])];
  const proc = startProcess(serverPath, args, opts.env ? { env: { ...process.env, ...opts.env } } : {});
  void proc.exited.then(() => keyFile.remove());
  const url = `http://127.0.0.1:${port}`;
  try {
    // /health answers 503 while loading and 200 when ready; it needs no key.
    await waitFor(
      'llama-server readiness',
      async () => {
        const r = await fetch(`${url}/health`);
        return r.status === 200 ? true : undefined;
      },
      { timeoutMs: opts.readyTimeoutMs ?? 120_000, proc },
    );
  } catch (e) {
    await proc.stop(1000);
    throw e;
  }
  return { url, apiKey, port, pid: proc.pid, proc, logText: proc.logText, stop: () => proc.stop() };
}

/** Runs llama-server on input that should make it fail (corrupt model, bad flags) and returns how it ended. */
export async function runLlamaServerExpectingFailure(opts: {
  model: string;
  extraArgs?: string[];
  timeoutMs?: number;
}): Promise<{ code: number | null; signal: NodeJS.Signals | null; logText: string }> {
  const bins = await getLlamaBinaries();
  const port = await pickFreePort();
  const keyFile = writeSecretFile('unused');
  const proc = startProcess(bins.serverPath, [...baseArgs(opts.model, port, keyFile, 512), ...(opts.extraArgs ?? [])]);
  void proc.exited.then(() => keyFile.remove());
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const timer = setTimeout(() => {
    void proc.stop(1000);
  }, timeoutMs);
  const r = await proc.exited;
  clearTimeout(timer);
  if (r.signal === 'SIGTERM' || r.signal === 'SIGKILL') {
    throw new Error(`llama-server did not fail within ${timeoutMs} ms; last output:\n${tail(proc.logText())}`);
  }
  return { ...r, logText: proc.logText() };
}
