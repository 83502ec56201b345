import { strataCacheDir, strataStateDir } from '../../core/paths';
import { defaultBuildForModel, findLlamaServer, FindResult, listInstalledBuilds, preferredBuildOrder } from '../../daemon/installer';
import { ServerSettings } from './plan';

// Which llama-server a model runs on: the setting; else the managed build that won this model's
// backend benchmark; else the other managed installs (GPU before CPU, newest first); else PATH;
// else the well-known places. No `vscode` import.

export interface ResolveBinaryOptions {
  cacheDir?: string;
  stateDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Backends the accelerator probe found, best first (orders the managed installs). */
  probeBackends?: string[];
}

export function findServerFor(settings: Pick<ServerSettings, 'serverPath'>, modelPath: string | undefined, opts: ResolveBinaryOptions = {}): FindResult {
  const env = opts.env ?? process.env;
  const builds = listInstalledBuilds(opts.cacheDir ?? strataCacheDir(env));
  const defaultId = modelPath ? defaultBuildForModel(modelPath, opts.stateDir ?? strataStateDir(env)) : undefined;
  const managed = preferredBuildOrder(builds, { defaultId, probeBackends: opts.probeBackends });
  return findLlamaServer({
    settingPath: settings.serverPath,
    managed: managed.map((b) => ({ id: b.id, serverPath: b.serverPath, backend: b.backend })),
    env,
  });
}
