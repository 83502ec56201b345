import * as vscode from 'vscode';
import { Problem } from './statusView';

// What keeps this window from loading its model, and which event solves which kind: a new plan
// solves the plan's problems (no model, no llama-server, a bad setting) but not the daemon's
// (`sidecar`) or another window's model (`busy`); a connection solves `sidecar`; a load that
// starts solves `busy`. Each problem is logged once, however often re-planning finds it again.

export class WindowProblem {
  private problem?: Problem;
  private readonly logged = new Set<string>();

  constructor(private readonly log: vscode.LogOutputChannel) {}

  get now(): Problem | undefined {
    return this.problem;
  }

  /** After re-planning: the plan's problem, or undefined when there is a plan. */
  planned(planProblem: Problem | undefined): void {
    if (planProblem) this.problem = planProblem;
    else if (this.problem?.kind !== 'sidecar' && this.problem?.kind !== 'busy') this.problem = undefined;
    const p = this.problem;
    if (p && !this.logged.has(p.message)) {
      this.logged.add(p.message);
      this.log.warn(p.message);
    }
  }

  /** After an attempt to reach the daemon: its failure, or undefined when connected. */
  connected(failure: string | undefined): void {
    if (failure) this.problem = { kind: 'sidecar', message: failure };
    else if (this.problem?.kind === 'sidecar') this.problem = undefined;
  }

  /** Another window's model holds the server (said by the load that was refused). */
  busy(p: Problem): void {
    this.problem = p;
  }

  loadStarting(): void {
    if (this.problem?.kind === 'busy') this.problem = undefined;
  }
}
