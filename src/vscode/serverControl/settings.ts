import * as vscode from 'vscode';
import { DEFAULT_SERVER_SETTINGS, ServerSettings } from './plan';
import { strataSettings } from '../workspaceTrust';

// `strata.model.*`, `strata.server.*` and `strata.sidecar.*` as one plain object. The
// environment fills what the settings leave empty (STRATA_MODEL, STRATA_LLAMA_SERVER), so that
// `npm start` and desktop `code --extensionDevelopmentPath` can run without touching the user's
// settings.

// The cluster's peers and mode decide whether a model that does not fit here alone can load.
import { SERVER_RESTART_SETTINGS as SERVER_SETTING_SECTIONS } from '../restartSettings';

export function readServerSettings(env: NodeJS.ProcessEnv = process.env): ServerSettings {
  const c = strataSettings('strata');
  const str = (key: string): string | undefined => {
    const v = c.get<string>(key, '');
    return typeof v === 'string' && v.trim() ? v.trim() : undefined;
  };
  const num = (key: string, def: number): number => {
    const v = c.get<number>(key, def);
    return typeof v === 'number' && Number.isFinite(v) ? v : def;
  };
  const extra = c.get<unknown>('server.extraArgs', []);
  return {
    modelPath: str('model.path') ?? (env.STRATA_MODEL?.trim() || undefined),
    serverPath: str('server.path') ?? (env.STRATA_LLAMA_SERVER?.trim() || undefined),
    extraArgs: Array.isArray(extra) ? extra.filter((a): a is string => typeof a === 'string') : [],
    contextSize: Math.max(256, Math.floor(num('server.contextSize', DEFAULT_SERVER_SETTINGS.contextSize))),
    gpuLayers: Math.floor(num('server.gpuLayers', DEFAULT_SERVER_SETTINGS.gpuLayers)),
    idleUnloadMinutes: Math.max(0, num('sidecar.idleUnloadMinutes', DEFAULT_SERVER_SETTINGS.idleUnloadMinutes)),
    autoStart: c.get<boolean>('server.autoStart', DEFAULT_SERVER_SETTINGS.autoStart),
    releaseUrl: str('server.releaseUrl'),
  };
}

export function affectsServerSettings(e: vscode.ConfigurationChangeEvent): boolean {
  return SERVER_SETTING_SECTIONS.some((s) => e.affectsConfiguration(s));
}

/** Daemon timers for tests and unusual setups: STRATA_SIDECAR_CONFIG='{"idleExitMs":5000}'. */
export function daemonConfigFromEnv(env: NodeJS.ProcessEnv = process.env, warn?: (m: string) => void): Record<string, unknown> | undefined {
  const raw = env.STRATA_SIDECAR_CONFIG;
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  warn?.(`STRATA_SIDECAR_CONFIG is not a JSON object; ignoring it`);
  return undefined;
}
