import * as vscode from 'vscode';
import { registerCommands } from '../commands';
import type { SidecarController } from '../serverControl/controller';
import { createPlannerPlanProvider, PlannerState } from './planProvider';
import { switchModelCommand } from './switchModel';
import { affectsAny, REPLAN_SETTINGS } from '../restartSettings';

export { createPlannerPlanProvider } from './planProvider';

// Models in the extension: the memory planner on the sidecar controller's plan seam, and the
// "Strata: Switch Model" command. Wiring in activate():
//   const planner = createPlannerPlanProvider(log);
//   controller = new SidecarController({ ..., planProvider: planner.provider });
//   registerModels(context, { controller, log, planner: planner.state });
// (Without `planner`, registerModels installs the provider itself through setPlanProvider.)

export function registerModels(
  context: vscode.ExtensionContext,
  deps: { controller: SidecarController; log: vscode.LogOutputChannel; planner?: PlannerState },
): PlannerState {
  let state = deps.planner;
  if (!state) {
    const made = createPlannerPlanProvider(deps.log);
    state = made.state;
    void deps.controller.setPlanProvider(made.provider).catch((e: Error) => deps.log.error(`model planner: ${e.message}`));
  }
  const planner = state;
  context.subscriptions.push(
    ...registerCommands('models', { 'strata.models.switch': () => switchModelCommand({ controller: deps.controller, log: deps.log, planner }) }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      // Settings that change the flags re-plan (a running model switches to the new plan).
      if (affectsAny(e, REPLAN_SETTINGS)) void deps.controller.replanAndReload();
    }),
  );
  return planner;
}
