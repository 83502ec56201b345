import { performance } from 'perf_hooks';
import * as vscode from 'vscode';
import { CompletionEngine, percentile } from '../../core/completion/completionEngine';
import { ServerConnectionSource } from '../serverConnectionSource';
import { completionEnabled, completionSettings } from '../settings';
import { ContextTracker } from './contextTracker';
import { asCompletionDocument } from './documentAdapter';
import { CompletionStatusItem } from './statusItem';

// Everything around the inline completion provider: the engine, the extra-context tracker, the
// status item, and the completion commands. Created once per window by the provider.

export const ACCEPTED_COMMAND = 'strata.completion.accepted';

export class CompletionFeature implements vscode.Disposable {
  readonly engine: CompletionEngine;
  readonly tracker: ContextTracker;
  private readonly statusItem = new CompletionStatusItem();
  private readonly disposables: vscode.Disposable[] = [];
  private warnedNoFim = new Set<string>();

  constructor(readonly source: ServerConnectionSource, readonly log: vscode.LogOutputChannel) {
    this.engine = new CompletionEngine(() => this.source.current('fim').client, completionSettings, {
      log: (level, msg) => log[level](msg),
    });
    this.tracker = new ContextTracker(this.engine, completionSettings, log);
    const refresh = () => this.statusItem.show(this.engine.status.snapshot, completionEnabled());
    const sub = this.engine.status.onChange((s) => {
      refresh();
      if (s.state === 'no-fim' && !this.warnedNoFim.has(s.message)) {
        // The one pop-up of the completion path: the user must pick another model.
        this.warnedNoFim.add(s.message);
        void vscode.window.showWarningMessage(`Strata: ${s.message}`);
      }
    });
    this.disposables.push(
      this.tracker,
      this.statusItem,
      { dispose: () => sub.dispose() },
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('strata.completion')) {
          this.engine.reconfigure();
          this.engine.clearCaches();
          refresh();
        }
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.engine.status.setSkipped(undefined)),
      vscode.commands.registerCommand(ACCEPTED_COMMAND, () => this.onAccepted()),
      vscode.commands.registerCommand('strata.completion.trigger', () => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger')),
      vscode.commands.registerCommand('strata.completion.showStatus', () => this.showStatus()),
      // For tests and bug reports: what the engine did (requests, cache hits, CPU per completion).
      vscode.commands.registerCommand('strata.completion.stats', () => this.statsReport()),
    );
    refresh();
  }

  private onAccepted(): void {
    const ed = vscode.window.activeTextEditor;
    if (!ed) return;
    const t0 = performance.now();
    const doc = asCompletionDocument(ed.document);
    const pos = ed.selection.active;
    this.engine.accepted(doc, { line: pos.line, character: pos.character });
    this.log.trace(`accepted; prefetching the next completion (${(performance.now() - t0).toFixed(2)} ms)`);
  }

  statsReport(): Record<string, unknown> {
    const cpu = this.engine.cpuSamples;
    return {
      status: this.engine.status.snapshot,
      stats: { ...this.engine.stats },
      cpuMs: { n: cpu.length, p50: percentile(cpu, 50), p99: percentile(cpu, 99), max: cpu.length ? Math.max(...cpu) : NaN },
      extraContext: this.engine.extra.describe(),
    };
  }

  private async showStatus(): Promise<void> {
    const s = this.engine.status.snapshot;
    const st = this.engine.stats;
    const lines = [
      s.skipped ? `Off in this file: ${s.skipped}.` : s.message,
      s.last ? `Last: ${s.last.latencyMs} ms, ${s.last.promptTokens ?? '?'} prompt tokens evaluated, ${s.last.cachedTokens ?? '?'} reused.` : '',
      `This session: ${st.requests} requests (${st.aborted} cancelled), ${st.servedFromCache + st.typedThrough + st.joined} answered from memory, ${this.engine.extra.size} context chunks.`,
    ].filter(Boolean);
    this.log.info(lines.join(' '));
    const pick = await vscode.window.showInformationMessage(`Strata completions: ${lines.join(' ')}`, 'Show Log', completionEnabled() ? 'Turn Off' : 'Turn On');
    if (pick === 'Show Log') this.log.show(true);
    else if (pick) await vscode.commands.executeCommand('strata.toggleCompletions');
  }

  dispose(): void {
    this.engine.cancel();
    for (const d of this.disposables) d.dispose();
  }
}
