import * as path from 'path';
import * as vscode from 'vscode';
import { ServerPlan } from '../../core/protocol';
import { SidecarClient } from '../../core/daemonClient';
import { withLoadProgress } from './loadProgress';

// Hands a plan to the daemon to load: one load at a time (a second request joins the one
// running; a replace waits for it, then switches), after the cluster's gate (the daemon must know
// the peers before it plans a load that may need them), and, for a load the user asked for, in a
// progress notification whose Cancel stops the server. Never throws: a failure goes to `failed`.

export interface ModelLoaderDeps {
  log: vscode.LogOutputChannel;
  /** The plan to load, read when the load begins (after a running one ended). */
  plan(): ServerPlan | undefined;
  /** The daemon's client if connected now (its progress events feed the notification). */
  client(): SidecarClient | undefined;
  /** The daemon's client, starting the daemon when needed; undefined when it could not be reached (already said). */
  connect(): Promise<SidecarClient | undefined>;
  /** A load is about to be asked for: earlier load errors no longer hold. */
  starting(): void;
  failed(e: Error, plan: ServerPlan): void;
  /** The user cancelled the progress notification. */
  cancel(): void;
  /** A load ended (or there was nothing to load). */
  settled(): void;
}

export class ModelLoader {
  private running?: Promise<void>;
  private gate?: () => Promise<void>;

  constructor(private readonly deps: ModelLoaderDeps) {}

  get loading(): boolean {
    return !!this.running;
  }

  /** Awaited after connecting and before every load (the cluster hands its peers over there). */
  setGate(gate: (() => Promise<void>) | undefined): void {
    this.gate = gate;
  }

  async load(opts: { replace?: boolean; notify?: boolean }): Promise<void> {
    if (this.running && !opts.replace) return this.running;
    if (this.running) await this.running;
    const plan = this.deps.plan();
    if (!plan) {
      this.deps.settled();
      return;
    }
    const { log } = this.deps;
    const run = async (): Promise<void> => {
      const client = await this.deps.connect();
      if (!client) return;
      await this.gate?.().catch((e: Error) => log.warn(`before loading: ${e.message}`));
      this.deps.starting();
      try {
        if (opts.replace) await client.switchModel(plan);
        else await client.ensureReady(plan);
      } catch (e) {
        this.deps.failed(e as Error, plan);
      }
    };
    const label = plan.label ?? path.basename(plan.modelPath);
    const cancel = () => {
      log.info(`loading ${label} cancelled`);
      this.deps.cancel();
    };
    this.running = (opts.notify ? withLoadProgress(label, this.deps.client(), cancel, run) : run()).finally(() => {
      this.running = undefined;
      this.deps.settled();
    });
    return this.running;
  }
}
