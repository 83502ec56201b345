// How a plan becomes a llama-server process: the flags the supervisor adds (-m, loopback host,
// port, --metrics), a fresh API key per start, and the environment (router mode where the
// lifetime guard keeps stdin a pipe). The supervisor decides when to start one; this, how.

import * as crypto from 'crypto';
import { ServerEndpoint, ServerPlan } from '../core/protocol';
import { ChildRegistry } from './childRegistry';
import { LifetimeGuard } from './lifetimeGuard';
import { LlamaProcess } from './llamaProcess';
import { LogRing } from './logRing';

export interface LaunchOptions {
  registry: ChildRegistry;
  serverLogFile: string;
  guard?: LifetimeGuard;
  watchdog: boolean;
  routerMode: boolean;
}

/** Starts llama-server for the plan on the port; the endpoint is where it serves once ready. */
export function launchLlamaServer(plan: ServerPlan, port: number, opts: LaunchOptions, ring: LogRing): { proc: LlamaProcess; endpoint: ServerEndpoint } {
  const apiKey = crypto.randomBytes(24).toString('base64url');
  const url = `http://127.0.0.1:${port}`;
  const args = ['-m', plan.modelPath, '--host', '127.0.0.1', '--port', String(port), '--metrics', ...plan.args];
  // LLAMA_SERVER_ROUTER_PORT: exact load progress and stdin-EOF exit on builds with router mode (loadProgress.ts).
  const env: NodeJS.ProcessEnv = { ...process.env, ...plan.env };
  // Router mode needs stdin as a pipe that stays open; the native spawn gives it /dev/null,
  // on which a router child would exit right after becoming ready.
  const routerMode = opts.routerMode && opts.guard?.kind !== 'spawn';
  if (routerMode) env.LLAMA_SERVER_ROUTER_PORT = String(port);
  delete env.ELECTRON_RUN_AS_NODE;
  const proc = LlamaProcess.start({
    binaryPath: plan.binaryPath,
    args,
    apiKey,
    env,
    logFile: opts.serverLogFile,
    registry: opts.registry,
    guard: opts.guard,
    watchdog: opts.watchdog,
    ring,
    routerMode,
  });
  return { proc, endpoint: { url, apiKey, pid: proc.pid ?? -1, port, model: plan.modelPath } };
}
