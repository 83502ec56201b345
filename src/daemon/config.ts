import { PROTOCOL_VERSION } from '../core/protocol';
import { BackoffOptions } from '../core/daemonClient/backoff';
import { strataStateDir } from '../core/paths';
import { GuardMode } from './lifetimeGuard';
import { version as packageVersion } from '../../package.json';

// Daemon settings. Defaults suit a user; tests shorten every timer through --config.

export interface DaemonConfig {
  stateDir: string;
  /** Exit after this long with no client connected (the last window closed). */
  idleExitMs: number;
  /** A connection that has not authenticated by then (from its TCP accept) is dropped. */
  helloTimeoutMs: number;
  /** Connections waiting for their hello, at most; one more pushes the oldest out. */
  maxPendingConnections: number;
  restart: BackoffOptions;
  maxCrashes: number;
  stableMs: number;
  stopGraceMs: number;
  activityPollMs: number;
  healthPollMs: number;
  hangCheck: { intervalMs: number; timeoutMs: number; failures: number };
  defaultReadyTimeoutMs: number;
  /** Kernel-level tie of llama-server to the daemon (lifetimeGuard.ts); 'none' to test the fallbacks alone. */
  guard: GuardMode;
  watchdog: boolean;
  /** Start llama-server as a router child (exact load progress; exits when its stdin closes). */
  routerMode: boolean;
  version: string;
  /** Always PROTOCOL_VERSION, except in tests that need an "old" daemon. */
  protocolVersion: number;
}

export function defaultConfig(stateDir = strataStateDir()): DaemonConfig {
  return {
    stateDir,
    idleExitMs: 120_000,
    helloTimeoutMs: 5_000,
    maxPendingConnections: 32,
    restart: { initialMs: 500, maxMs: 15_000, factor: 2, jitter: 0.2 },
    maxCrashes: 5,
    stableMs: 60_000,
    stopGraceMs: 10_000,
    activityPollMs: 15_000,
    healthPollMs: 100,
    hangCheck: { intervalMs: 15_000, timeoutMs: 10_000, failures: 4 },
    defaultReadyTimeoutMs: 10 * 60_000,
    guard: 'auto',
    watchdog: true,
    routerMode: true,
    version: packageVersion,
    protocolVersion: PROTOCOL_VERSION,
  };
}

/** Overrides a starter may pass (JSON in --config). */
export type DaemonOverrides = Partial<Omit<DaemonConfig, 'stateDir' | 'version'>>;

/** argv: [--state-dir DIR] [--config JSON] */
export function parseDaemonArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  let stateDir: string | undefined;
  let overrides: DaemonOverrides = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--state-dir') stateDir = argv[++i];
    else if (a === '--config') overrides = JSON.parse(argv[++i] ?? '{}') as DaemonOverrides;
    else throw new Error(`unknown argument ${a}`);
  }
  const base = defaultConfig(stateDir ?? strataStateDir(env));
  return {
    ...base,
    ...overrides,
    restart: { ...base.restart, ...(overrides.restart ?? {}) },
    hangCheck: { ...base.hangCheck, ...(overrides.hangCheck ?? {}) },
  };
}
