import * as fs from 'fs';
import * as path from 'path';
import { GgufFormatError } from '../../core/models/gguf/reader';
import { SplitModelError } from '../../core/models/inspect/modelInfo';
import { planArgs } from '../../core/models/planner/args';
import { ModelPlan, planModel, Role } from '../../core/models/planner/plan';
import { serverFlagsOf } from '../../core/models/planner/serverFlags';
import { inspectCached, planForFile } from '../../core/models/switcher';
import type { ServerPlan } from '../../core/protocol';
import { checkedExtraArgs, expandModelPath, ModelPlanProvider, ModelSettingError, settingsPlanProvider } from '../serverControl/plan';
import * as vscode from 'vscode';
import { readPeerSettings } from '../cluster';
import { plannerMachine } from './machine';
import { plannerEnabled, readModelsConfig } from './settings';
import { strataSettings } from '../workspaceTrust';

// The planner behind the sidecar controller's seam: the model `strata.model.path` names, planned
// against this machine and the llama-server that will run it, turned into that binary's flags.
// A model that cannot fit is refused here, with the fix in the message, instead of being loaded
// to crash. `strata.server.extraArgs` still come last and win.

export interface PlannerState {
  /** The last plan made (for the picker, the status report, tests). */
  plan?: ModelPlan;
  modelPath?: string;
  /** Why the last attempt produced no plan. */
  error?: string;
}

/** One model serves completions and chat (the sidecar runs one llama-server). */
const MAIN_ROLE: Role = 'both';

function peersMayHold(): boolean {
  const mode = strataSettings('strata.cluster').get<string>('mode', 'auto');
  return mode !== 'off' && readPeerSettings().some((p) => p.enabled !== false);
}

export function createPlannerPlanProvider(log: vscode.LogOutputChannel): { provider: ModelPlanProvider; state: PlannerState } {
  const state: PlannerState = {};
  const provider: ModelPlanProvider = async (ctx) => {
    if (!plannerEnabled()) return settingsPlanProvider(ctx);
    const s = ctx.settings;
    if (!s.modelPath?.trim()) return undefined;
    const modelPath = expandModelPath(s.modelPath);
    state.modelPath = modelPath;
    state.plan = undefined;
    state.error = undefined;
    const fail = (message: string): never => {
      state.error = message;
      throw new ModelSettingError(message);
    };
    if (!fs.existsSync(modelPath)) fail(`"strata.model.path" names ${modelPath}, which does not exist: pick a model with "Strata: Switch Model".`);
    const bin = ctx.resolveBinary(modelPath);
    const cfg = readModelsConfig();
    const draftPath = strataSettings('strata.models').get<string>('draft', '').trim();

    let plan: ModelPlan;
    try {
      const machine = await plannerMachine(bin.path, cfg.bandwidthGBps);
      let reserved: { device?: number[]; host?: number } | undefined;
      if (draftPath && fs.existsSync(draftPath)) {
        // The draft model runs next to the main one with the same context: plan it first and keep its memory aside.
        const d = await planForFile(draftPath, machine, { ...cfg, contextSize: cfg.contextSize || 32768 }, 'draft');
        reserved = { device: d.plan.devices.map((x) => x.total), host: d.plan.host.weights + d.plan.host.kv + d.plan.host.compute };
      }
      const info = await inspectCached(modelPath);
      plan = (await planForFile(modelPath, machine, cfg, MAIN_ROLE)).plan;
      if (reserved) {
        plan = planModel({
          model: info,
          machine,
          role: MAIN_ROLE,
          reserved,
          kvType: cfg.kvCacheType,
          ...(cfg.contextSize ? { ctx: cfg.contextSize } : {}),
          ...(cfg.slots ? { slots: cfg.slots } : {}),
          label: `${info.name ?? path.basename(modelPath)} ${info.quantLabel}`,
        });
      }
      if (!info.hasChatTemplate) log.warn(`${path.basename(modelPath)} has no chat template: chat uses llama-server's default format.`);
      if (!info.hasFim) log.warn(`${path.basename(modelPath)} declares no FIM tokens: inline completions will not work with it.`);
    } catch (e) {
      if (e instanceof ModelSettingError) throw e;
      if (e instanceof GgufFormatError || e instanceof SplitModelError) fail(`${e.message}; pick another model with "Strata: Switch Model".`);
      return fail(`Strata could not plan ${path.basename(modelPath)}: ${(e as Error).message}`);
    }
    state.plan = plan;
    log.info(`planner: ${plan.summary} ${plan.notes.join(' ')}`.trim());
    if (plan.verdict === 'does-not-fit') {
      // With peers the sidecar spreads it over them (and says which peer is missing if it still
      // does not fit); without, refuse here with the planner's reason.
      if (!peersMayHold()) fail(plan.summary);
      log.info(`planner: ${path.basename(modelPath)} does not fit on this machine alone; the sidecar plans it over the configured peers.`);
    }

    const flags = await serverFlagsOf(bin.path);
    const args = planArgs(plan, flags);
    if (flags.cacheReuse) args.push('--cache-reuse', '256');
    if (draftPath && fs.existsSync(draftPath)) args.push('-md', draftPath, '-ngld', String(plan.gpuLayers > 0 ? 999 : 0));
    args.push(...checkedExtraArgs(s.extraArgs));
    const result: ServerPlan = {
      binaryPath: bin.path,
      modelPath,
      args,
      label: path.basename(modelPath).replace(/(-\d{5}-of-\d{5})?\.gguf$/i, ''),
      ...(s.idleUnloadMinutes > 0 ? { idleUnloadMs: Math.round(s.idleUnloadMinutes * 60_000) } : {}),
    };
    return result;
  };
  return { provider, state };
}
