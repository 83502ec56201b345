import * as vscode from 'vscode';
import { wallClockMs } from '../core/completion/completionEngine';
import { asCompletionDocument } from './completion/documentAdapter';
import type { CompletionFeature } from './completion/feature';
import { strataConfig } from './settings';

// VS Code adapter of the completion engine. Per keystroke: one look at the settings snapshot,
// then the engine answers from memory at once (typed through, or a context seen before) or waits
// for the debounce and asks the server. VS Code cancels the previous call's token on every
// keystroke, which aborts its HTTP request so the server slot frees at once; the engine also
// keeps at most one request in flight. The feature (completion/feature.ts) owns this provider.

/** The command an accepted suggestion runs (the feature prefetches the next one). */
export const ACCEPTED_COMMAND = 'strata.completion.accepted';

export class StrataInlineCompletionProvider implements vscode.InlineCompletionItemProvider {
  constructor(private readonly feature: Pick<CompletionFeature, 'engine' | 'tracker' | 'log'>) {}

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const t0 = wallClockMs();
    const config = strataConfig();
    if (!config.completionEnabledFor(document.languageId)) return undefined;
    const invoked = context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke;
    if (!invoked && config.completion.triggerMode === 'manual') return undefined;
    this.feature.tracker.touch();
    const abort = new AbortController();
    const sub = token.onCancellationRequested(() => abort.abort());
    const engine = this.feature.engine;
    try {
      const doc = asCompletionDocument(document);
      const cursor = { line: position.line, character: position.character };
      const result = await engine.complete(doc, cursor, {
        signal: abort.signal,
        adapterCpuMs: wallClockMs() - t0,
        beforeRequest: () => delay(invoked ? 0 : engine.debounceMs(config.completion.debounceMs), abort.signal),
      });
      if (!result || abort.signal.aborted) return undefined;
      this.feature.log.debug(
        `completion (${result.source}) ${Math.round(result.latencyMs)} ms, prompt ${result.promptTokens ?? '-'} tok, cached ${result.cachedTokens ?? '-'}`,
      );
      const item = new vscode.InlineCompletionItem(result.text, new vscode.Range(position, position));
      item.command = { title: 'Strata: completion accepted', command: ACCEPTED_COMMAND };
      return [item];
    } catch (e) {
      // The engine reports failures through its status; this is a bug, log it once per call.
      this.feature.log.error(`inline completion: ${(e as Error).stack ?? e}`);
      return undefined;
    } finally {
      sub.dispose();
    }
  }
}

/** Resolves true after `ms`, false at once when aborted first. */
function delay(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    if (ms <= 0) return resolve(true);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
