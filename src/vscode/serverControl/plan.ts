import * as os from 'os';
import * as path from 'path';
import { checkServerFlags, ServerFlagError } from '../../core/llama/serverFlagAllowlist';
import { ServerPlan } from '../../core/protocol';
import { FindResult, ServerCandidate } from '../../daemon/installer';

// What to run, decided without `vscode` (the extension, `npm start`, benches and unit tests
// share it). The seam for the model catalog/planner (src/core/models, issue 6): a
// ModelPlanProvider gets the settings and a way to resolve the llama-server binary for a model,
// and returns a ServerPlan, or undefined when no model is chosen. The default provider below
// reads `strata.model.path`; the planner will replace it with one that picks flags by memory.

export interface ServerSettings {
  /** `strata.model.path` (or STRATA_MODEL in the environment). */
  modelPath?: string;
  /** `strata.server.path` (or STRATA_LLAMA_SERVER). */
  serverPath?: string;
  /** `strata.server.extraArgs`: appended last, so they win over the defaults. */
  extraArgs: string[];
  /** `strata.server.contextSize`. */
  contextSize: number;
  /** `strata.server.gpuLayers`: -1 lets llama.cpp decide. */
  gpuLayers: number;
  /** `strata.sidecar.idleUnloadMinutes`: 0 never. */
  idleUnloadMinutes: number;
  /** `strata.server.autoStart`: load the model when a window opens. */
  autoStart: boolean;
  /** `strata.server.releaseUrl`: release metadata for "Download llama-server". */
  releaseUrl?: string;
}

export const DEFAULT_SERVER_SETTINGS: ServerSettings = {
  extraArgs: [],
  contextSize: 8192,
  gpuLayers: 999,
  idleUnloadMinutes: 30,
  autoStart: true,
};

export type ResolvedBinary = ServerCandidate;

/** Thrown by resolveBinary when no usable llama-server exists; `find` says what was looked at. */
export class NoServerBinaryError extends Error {
  constructor(readonly find: FindResult) {
    super(find.problem?.message ?? 'No llama-server found.');
    this.name = 'NoServerBinaryError';
  }
}

/** A model setting that cannot be used as it is. */
export class ModelSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelSettingError';
  }
}

export interface PlanContext {
  settings: ServerSettings;
  /** The llama-server to use for this model (settings, per-model benchmark winner, installs, PATH). Throws NoServerBinaryError. */
  resolveBinary(modelPath: string): ResolvedBinary;
}

/** undefined: no model chosen (the status bar then says so and offers the setting). */
export type ModelPlanProvider = (ctx: PlanContext) => Promise<ServerPlan | undefined>;

export function expandModelPath(p: string, home = os.homedir()): string {
  let out = p.trim();
  if (out === '~' || out.startsWith('~/') || out.startsWith('~\\')) out = path.join(home, out.slice(1));
  if (!path.isAbsolute(out)) throw new ModelSettingError(`"strata.model.path" must be an absolute path to a .gguf file, not "${p}": fix the setting.`);
  return path.normalize(out);
}

/**
 * `strata.server.extraArgs` through the shared allowlist: flags that tune speed and memory only.
 * Strata sets the model, host, port, key and peers itself; a flag that could load or write a file,
 * or make llama-server listen elsewhere, is refused in one sentence that says what to change.
 */
export function checkedExtraArgs(extraArgs: readonly string[]): string[] {
  try {
    return checkServerFlags(extraArgs);
  } catch (e) {
    if (!(e instanceof ServerFlagError)) throw e;
    throw new ModelSettingError(
      `"strata.server.extraArgs" has the llama-server flag ${JSON.stringify(e.flag)}, which Strata does not pass on because ${e.why}: ${e.fix ?? 'remove it from the setting (Strata sets the model, host, port, key, log and peers itself)'}.`,
    );
  }
}

/** Flags every plan gets unless the settings override them (extraArgs come last and win). */
export function defaultServerArgs(s: ServerSettings): string[] {
  const args = ['-c', String(s.contextSize), '--cache-reuse', '256'];
  if (s.gpuLayers >= 0) args.push('-ngl', String(s.gpuLayers));
  return [...args, ...checkedExtraArgs(s.extraArgs)];
}

export const settingsPlanProvider: ModelPlanProvider = async (ctx) => {
  const s = ctx.settings;
  if (!s.modelPath?.trim()) return undefined;
  const modelPath = expandModelPath(s.modelPath);
  const bin = ctx.resolveBinary(modelPath);
  return {
    binaryPath: bin.path,
    modelPath,
    args: defaultServerArgs(s),
    label: path.basename(modelPath).replace(/\.gguf$/i, ''),
    ...(s.idleUnloadMinutes > 0 ? { idleUnloadMs: Math.round(s.idleUnloadMinutes * 60_000) } : {}),
  };
};
