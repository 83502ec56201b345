import * as vscode from 'vscode';
import { CompletionResult } from '../../core/completion/completionEngine';
import { StrataInlineCompletionProvider } from '../inlineCompletionProvider';
import { ServerConnectionSource } from '../serverConnectionSource';

// Entry point of inline completions: activate() calls registerCompletions once.
//
//   const completions = registerCompletions(context, { source, log, statusBar });
//
// replaces constructing StrataInlineCompletionProvider, registering it and wiring onDidComplete
// to the status bar by hand (which keeps working as well).

export interface CompletionDeps {
  source: ServerConnectionSource;
  log: vscode.LogOutputChannel;
  /** The main Strata status item; its tooltip shows the last completion's figures. */
  statusBar?: { showCompletion(r: CompletionResult): void };
}

/**
 * By scheme, not by a '**' pattern: in a remote extension host (code-server, SSH) a
 * pattern-only selector never matches and the provider is silently never called.
 */
export const COMPLETION_SELECTOR: vscode.DocumentSelector = [{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: 'vscode-notebook-cell' }, { scheme: 'vscode-remote' }];

export function registerCompletions(context: vscode.ExtensionContext, deps: CompletionDeps): StrataInlineCompletionProvider {
  const provider = new StrataInlineCompletionProvider(deps.source, deps.log);
  context.subscriptions.push(
    provider.onDidComplete,
    vscode.languages.registerInlineCompletionItemProvider(COMPLETION_SELECTOR, provider),
  );
  if (deps.statusBar) {
    const bar = deps.statusBar;
    context.subscriptions.push(provider.onDidComplete.event((r) => bar.showCompletion(r)));
  }
  return provider;
}
