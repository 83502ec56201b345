import { ServerPlan, ServerStatus } from '../../core/protocol';
import { Problem } from './statusView';

// A keystroke or a chat message that finds no server: the one sentence completion and chat show
// instead, and whether this demand should load the model (after an idle unload). A stop on
// request (here or in another window) is not undone by a keystroke. No `vscode` import.

export interface DemandState {
  problem?: Problem;
  server?: ServerStatus;
  userStopped: boolean;
  loading: boolean;
  plan?: ServerPlan;
}

export interface DemandAnswer {
  error?: Error;
  /** Start loading this window's plan. */
  load?: boolean;
}

const LOADING = 'Strata is loading the model; completions start when it is ready.';

export function answerDemand(d: DemandState): DemandAnswer {
  if (d.problem && d.problem.kind !== 'busy') return { error: new Error(d.problem.message) };
  const sv = d.server;
  if (d.userStopped) return { error: new Error('The Strata server is stopped: run "Strata: Start Server".') };
  if (sv?.phase === 'failed') return { error: new Error(sv.error?.message ?? 'llama-server failed: run "Strata: Restart Server".') };
  if (sv?.phase === 'loading' || sv?.phase === 'restarting' || d.loading) return { error: new Error(LOADING) };
  // Stopped on purpose (here or in another window): a keystroke does not undo that.
  if (sv?.phase === 'stopped' && sv.stoppedReason === 'requested') return { error: new Error('The Strata server was stopped: run "Strata: Start Server".') };
  if (d.plan && (!sv || sv.phase === 'stopped')) return { error: new Error(LOADING), load: true };
  return {};
}
