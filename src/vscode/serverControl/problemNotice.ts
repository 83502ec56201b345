import * as path from 'path';
import * as vscode from 'vscode';
import { ServerPlan } from '../../core/protocol';
import { SidecarError } from '../../core/daemonClient';
import { chooseServerBinary } from '../walkthrough/choosers';
import { ACTIONS } from '../walkthrough/nextSteps';
import { Problem } from './statusView';

// What keeps this window from loading its model, said to the user: a failed load turned into a
// Problem or a log entry, and a Problem shown as a notification whose buttons fix it.

export interface Explanation {
  severity: 'warning' | 'error';
  text: string;
  actions: string[];
}

/** A load the daemon refused or that failed: `busy` is a Problem, a cancel is a log line, the rest an error with llama-server's last lines. */
export function problemOfLoadError(
  e: Error,
  plan: ServerPlan,
  otherLabel: string | undefined,
  log: vscode.LogOutputChannel,
): { problem?: Problem; error?: string } {
  const code = (e as SidecarError).code;
  if (code === 'busy') {
    const problem: Problem = {
      kind: 'busy',
      message: `${otherLabel ?? 'Another model'} is loaded for another window; "Strata: Start Server" switches every window to ${plan.label ?? path.basename(plan.modelPath)}.`,
    };
    log.warn(problem.message);
    return { problem };
  }
  if (code === 'cancelled') {
    log.info(e.message);
    return {};
  }
  log.error(`loading ${plan.label ?? plan.modelPath} failed: ${e.message}`);
  for (const l of (e as SidecarError).logTail ?? []) log.error(`  | ${l}`);
  return { error: e.message };
}

/** Shows `p` with the actions that fix it and carries out the one picked; `shown` gets what was shown (tests read it). */
export async function explainProblem(p: Problem, shown: (e: Explanation) => void): Promise<void> {
  const say = (severity: 'warning' | 'error', ...actions: string[]): Thenable<string | undefined> => {
    const text = `Strata: ${p.message}`;
    shown({ severity, text, actions });
    return severity === 'warning' ? vscode.window.showWarningMessage(text, ...actions) : vscode.window.showErrorMessage(text, ...actions);
  };
  if (p.kind === 'no-model') {
    // The picker, not a settings page: it lists what fits, what is on disk first (issue 16).
    const pick = await say('warning', ACTIONS.pickModel);
    if (pick) await vscode.commands.executeCommand('strata.models.switch');
  } else if (p.kind === 'no-binary') {
    const pick = await say('warning', ACTIONS.download, ACTIONS.build, ACTIONS.chooseServer);
    if (pick === ACTIONS.build) await vscode.commands.executeCommand('strata.server.build');
    else if (pick === ACTIONS.download) await vscode.commands.executeCommand('strata.server.download');
    else if (pick === ACTIONS.chooseServer) await chooseServerBinary();
  } else if (p.kind === 'bad-setting') {
    const pick = await say('warning', 'Open Settings');
    if (pick) await vscode.commands.executeCommand('workbench.action.openSettings', 'strata.');
  } else {
    const pick = await say('error', 'Show Logs');
    if (pick) await vscode.commands.executeCommand('strata.server.showLogs');
  }
}
