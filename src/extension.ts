import * as vscode from 'vscode';
import { registerChat } from './vscode/chat';
import { registerCluster } from './vscode/cluster';
import { createPlannerPlanProvider, registerModels } from './vscode/models';
import { StrataInlineCompletionProvider } from './vscode/inlineCompletionProvider';
import { ServerConnectionSource } from './vscode/serverConnectionWatcher';
import { StatusBar } from './vscode/serverStatus';
import { completionEnabled } from './vscode/settings';
import { registerServerCommands } from './vscode/sidecar/commands';
import { SidecarController } from './vscode/sidecar/controller';

// Wires the pieces together; behaviour lives in src/vscode and src/core.

let controller: SidecarController | undefined;

/** What activate() returns: read by the extension-host tests. */
export interface StrataApi {
  statusBarText(): string;
  sidecar: SidecarController;
}

export function activate(context: vscode.ExtensionContext): StrataApi {
  const log = vscode.window.createOutputChannel('Strata', { log: true });
  const source = new ServerConnectionSource();
  const statusBar = new StatusBar();
  const provider = new StrataInlineCompletionProvider(source, log);
  statusBar.setEnabled(completionEnabled());
  // The sidecar daemon owns llama-server; the controller feeds `source` (completion and chat)
  // from it and drives the status bar. What it loads comes from the memory planner
  // (src/vscode/models) on the controller's ModelPlanProvider seam.
  const planner = createPlannerPlanProvider(log);
  controller = new SidecarController({ context, log, source, statusBar, planProvider: planner.provider });

  context.subscriptions.push(
    log,
    statusBar,
    controller,
    provider.onDidComplete,
    provider.onDidComplete.event((r) => statusBar.showCompletion(r)),
    // By scheme, not by a '**' pattern: in a remote extension host (code-server, SSH) a
    // pattern-only selector never matches and the provider is silently never called.
    vscode.languages.registerInlineCompletionItemProvider([{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: 'vscode-notebook-cell' }], provider),
    ...registerServerCommands({ controller, source, log, extensionPath: context.extensionPath }),
    vscode.commands.registerCommand('strata.toggleCompletions', async () => {
      const cfg = vscode.workspace.getConfiguration('strata');
      const next = !cfg.get<boolean>('completion.enabled', true);
      await cfg.update('completion.enabled', next, vscode.ConfigurationTarget.Global);
      statusBar.setEnabled(next);
      return next;
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('strata.completion.enabled')) statusBar.setEnabled(completionEnabled());
    }),
  );
  registerChat(context, { source, log });
  registerModels(context, { controller, log, planner: planner.state });
  // Peers for a split model; the sidecar seam is optional until the protocol carries cluster requests.
  const c0 = controller;
  registerCluster(context, { log, modelPath: () => c0.currentPlan?.modelPath });
  log.info(`Strata activated; state dir ${controller.stateDir}; server connection file: ${source.file()}`);
  const c = controller;
  void c.activate().catch((e: Error) => log.error(`starting the Strata sidecar: ${e.message}`));
  return { statusBarText: () => statusBar.text, sidecar: c };
}

export function deactivate(): void {
  // This window lets go of the sidecar; the daemon stops llama-server and exits once no window
  // has been connected for a while (its idle exit), so closing every window leaves no process.
  controller?.dispose();
  controller = undefined;
}
