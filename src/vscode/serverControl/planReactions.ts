import { samePlan, ServerPlan, ServerStatus } from '../../core/protocol';

// What a new plan means for the llama-server the daemon runs, decided without `vscode` (unit
// tested): switch the server this window loaded to the new plan, load one, unload this window's
// model when its setting was cleared, or leave alone a server another window loaded.

export type PlanReaction = 'switch' | 'load' | 'unload' | 'none';

export interface PlanChange {
  /** The plan before re-planning. */
  old?: ServerPlan;
  /** The plan after. */
  plan?: ServerPlan;
  /** What the daemon runs now. */
  running?: ServerStatus;
  /** This window's user stopped the server ("Stop Server"). */
  userStopped: boolean;
}

const ACTIVE = ['loading', 'ready', 'restarting'];

/** The server runs (or is getting there) with `plan`'s model, binary and flags. */
export function runsPlan(running: ServerStatus | undefined, plan: ServerPlan | undefined): boolean {
  return !!(running?.plan && plan && samePlan(running.plan, plan) && ACTIVE.includes(running.phase));
}

/** The server runs (or is getting there) with a plan other than `plan`: another window's model. */
export function runsOtherPlan(running: ServerStatus | undefined, plan: ServerPlan | undefined): boolean {
  return !!(running?.plan && plan && !samePlan(running.plan, plan) && ACTIVE.includes(running.phase));
}

/** After a settings change: follow it with the server this window loaded; load when autoStart wants it. */
export function reactToSettings(c: PlanChange & { autoStart: boolean }): PlanReaction {
  const ours = runsPlan(c.running, c.old);
  if (!c.plan) return ours ? 'unload' : 'none';
  const phase = c.running?.phase;
  if (c.old && samePlan(c.old, c.plan) && phase && phase !== 'stopped' && phase !== 'failed') return 'none';
  if (ours) return 'switch';
  return c.autoStart && !c.userStopped ? 'load' : 'none';
}

/**
 * After an install or a benchmark changed which binary is best: a server running this window's
 * old plan switches to the new one; otherwise a server is loaded only when `wantLoad` (it was
 * unloaded for the operation, or autoStart).
 */
export function reactToReplan(c: PlanChange & { wantLoad: boolean }): PlanReaction {
  if (!c.plan) return 'none';
  const r = c.running;
  if (r?.plan && c.old && samePlan(r.plan, c.old) && !samePlan(c.old, c.plan) && r.phase !== 'stopped') return 'switch';
  return !c.userStopped && c.wantLoad ? 'load' : 'none';
}
