import * as vscode from 'vscode';
import { CompletionEngine, CompletionResult } from '../core/completion/completionEngine';
import { ConnectionFileError } from '../core/llama/serverConnection';
import { ServerConnectionSource } from './serverConnectionWatcher';
import { completionEnabled, completionSettings, debounceMs } from './settings';

// VS Code adapter: debounces keystrokes, cancels the HTTP request of a superseded keystroke
// (so the server slot frees at once), and hands the core engine a plain document snapshot.

export class StrataInlineCompletionProvider implements vscode.InlineCompletionItemProvider {
  private readonly engine: CompletionEngine;
  private inFlight?: AbortController;
  private lastErrorShown = '';
  readonly onDidComplete = new vscode.EventEmitter<CompletionResult>();

  constructor(private readonly source: ServerConnectionSource, private readonly log: vscode.LogOutputChannel) {
    this.engine = new CompletionEngine(() => this.source.current().client, completionSettings);
  }

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    _context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    this.log.trace(`provide ${document.uri.toString()} ${position.line}:${position.character}`);
    if (!completionEnabled(document.languageId)) return undefined;
    this.inFlight?.abort();
    const abort = new AbortController();
    this.inFlight = abort;
    const sub = token.onCancellationRequested(() => abort.abort());
    try {
      await delay(debounceMs(), abort.signal);
      if (abort.signal.aborted) return undefined;
      const result = await this.engine.complete({
        fileName: document.fileName,
        languageId: document.languageId,
        text: document.getText(),
        line: position.line,
        character: position.character,
      }, abort.signal);
      if (!result || abort.signal.aborted) return undefined;
      this.onDidComplete.fire(result);
      this.log.debug(`completion ${result.fromCache ? '(cache)' : ''} ${result.latencyMs} ms, prompt ${result.promptTokens ?? '?'} tok, cached ${result.cachedTokens ?? '?'}`);
      return [new vscode.InlineCompletionItem(result.text, new vscode.Range(position, position))];
    } catch (e) {
      if (abort.signal.aborted || (e as Error).name === 'AbortError') return undefined;
      this.reportError(e as Error);
      return undefined;
    } finally {
      sub.dispose();
      if (this.inFlight === abort) this.inFlight = undefined;
    }
  }

  private reportError(e: Error): void {
    // Every keystroke would repeat the same failure; say it once until it changes.
    if (e.message === this.lastErrorShown) return;
    this.lastErrorShown = e.message;
    this.log.warn(`inline completion failed: ${e.message}`);
    if (e instanceof ConnectionFileError) void vscode.window.showWarningMessage(`Strata: ${e.message}`);
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
