import * as vscode from 'vscode';
import { registerChat } from './vscode/chat';
import { StrataInlineCompletionProvider } from './vscode/inlineCompletionProvider';
import { ServerConnectionSource } from './vscode/serverConnectionWatcher';
import { collectServerStatus, describeStatus, StatusBar } from './vscode/serverStatus';
import { completionEnabled } from './vscode/settings';

// Wires the pieces together; behaviour lives in src/vscode and src/core.

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Strata', { log: true });
  const source = new ServerConnectionSource();
  const statusBar = new StatusBar();
  const provider = new StrataInlineCompletionProvider(source, log);
  statusBar.setEnabled(completionEnabled());

  context.subscriptions.push(
    log,
    statusBar,
    provider.onDidComplete,
    provider.onDidComplete.event((r) => statusBar.showCompletion(r)),
    // By scheme, not by a '**' pattern: in a remote extension host (code-server, SSH) a
    // pattern-only selector never matches and the provider is silently never called.
    vscode.languages.registerInlineCompletionItemProvider([{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: 'vscode-notebook-cell' }], provider),
    vscode.commands.registerCommand('strata.showServerStatus', async () => {
      const status = await collectServerStatus(source);
      const text = describeStatus(status);
      log.info(text);
      if (status.connected && status.ready) void vscode.window.showInformationMessage(text);
      else void vscode.window.showWarningMessage(text);
      // Returned so that tests and other commands can read it.
      return status;
    }),
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
  log.info(`Strata activated; server connection file: ${source.file()}`);
}

export function deactivate(): void {
  // Nothing to stop: this window owns no server (the launcher or sidecar does).
}
