import * as vscode from 'vscode';
import { registerChat } from './vscode/chat';
import { registerCluster } from './vscode/cluster';
import { createClusterSeam, localDevicesFor } from './vscode/cluster/sidecarSeam';
import { registerCompletions } from './vscode/completion';
import { ExternalServerWatch } from './vscode/externalServer';
import { createPlannerPlanProvider, registerModels } from './vscode/models';
import { ServerConnectionSource } from './vscode/serverConnectionSource';
import { StatusBar } from './vscode/serverStatus';
import { watchStrataConfig } from './vscode/settings';
import { registerServerCommands } from './vscode/serverControl/commands';
import { SidecarController } from './vscode/serverControl/controller';
import { registerWalkthrough } from './vscode/walkthrough';
import { registerWorkspaceTrust } from './vscode/workspaceTrust';

// Wires the pieces together; behaviour lives in src/vscode and src/core.

let controller: SidecarController | undefined;

/** What activate() returns: read by the extension-host tests. */
export interface StrataApi {
  statusBarText(): string;
  sidecar: SidecarController;
  /** Restricted settings this untrusted workspace sets and Strata ignores (empty when trusted). */
  workspaceSettingsHeldBack(): Promise<string[]>;
}

export function activate(context: vscode.ExtensionContext): StrataApi {
  // First: every feature's reaction to a settings change then sees the new settings snapshot.
  context.subscriptions.push(watchStrataConfig());
  const log = vscode.window.createOutputChannel('Strata', { log: true });
  const source = new ServerConnectionSource();
  const statusBar = new StatusBar();
  // The sidecar daemon owns llama-server; the controller feeds `source` (completion and chat)
  // from it and drives the status bar. What it loads comes from the memory planner
  // (src/vscode/models) on the controller's ModelPlanProvider seam.
  const planner = createPlannerPlanProvider(log);
  controller = new SidecarController({ context, log, source, statusBar, planProvider: planner.provider });

  context.subscriptions.push(log, source, statusBar, controller, ...registerServerCommands({ controller, source, log, extensionPath: context.extensionPath }));
  registerCompletions(context, { source, log, statusBar });
  const chat = registerChat(context, { source, log });
  // A server this window did not start (server.json): the status bar names its model.
  context.subscriptions.push(new ExternalServerWatch(source, statusBar, log));
  registerModels(context, { controller, log, planner: planner.state });
  // Peers: the daemon runs the cluster; every load waits until it has this window's peers.
  const c0 = controller;
  const cluster = registerCluster(context, {
    log,
    sidecar: createClusterSeam(c0),
    modelPath: () => c0.currentPlan?.modelPath,
    localDevices: async () => (await localDevicesFor(c0.currentPlan?.binaryPath)) ?? [],
  });
  c0.setLoadGate(() => cluster.settled());
  // Restricted Mode: the workspace's model, llama-server and flag settings wait until it is trusted.
  const trust = registerWorkspaceTrust({
    log,
    onTrusted: () => void c0.replanAndReload().catch((e: Error) => log.error(`re-planning for the trusted workspace: ${e.message}`)),
  });
  context.subscriptions.push(trust.disposable);
  registerWalkthrough(context, { controller: c0, source, chat, log, extensionPath: context.extensionPath });
  log.info(`Strata activated; state dir ${controller.stateDir}; server connection file: ${source.file()}`);
  const c = controller;
  void c.activate().catch((e: Error) => log.error(`starting the Strata sidecar: ${e.message}`));
  return { statusBarText: () => statusBar.text, sidecar: c, workspaceSettingsHeldBack: () => trust.heldBack };
}

export function deactivate(): void {
  // This window lets go of the sidecar; the daemon stops llama-server and exits once no window
  // has been connected for a while (its idle exit), so closing every window leaves no process.
  controller?.dispose();
  controller = undefined;
}
