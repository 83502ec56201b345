import { performance } from 'perf_hooks';
import * as vscode from 'vscode';
import { registerCommands } from '../commands';
import { CompletionEngine, percentile } from '../../core/completion/completionEngine';
import { ACCEPTED_COMMAND, StrataInlineCompletionProvider } from '../inlineCompletionProvider';
import { affectsAny, COMPLETION_RESET_SETTINGS } from '../restartSettings';
import { ServerConnectionSource } from '../serverConnectionSource';
import { onDidChangeStrataConfig, strataConfig } from '../settings';
import { strataSettings } from '../workspaceTrust';
import { ContextTracker } from './contextTracker';
import { asCompletionDocument } from './documentAdapter';
import { CompletionStatusItem } from './statusItem';

// The inline-completion feature, owner of everything in it: the engine, the extra-context
// tracker, the provider VS Code calls, the one status item that shows how completions are doing,
// the completion commands, and strata.completion.enabled (the toggle and the setting).

/**
 * By scheme, not by a '**' pattern: in a remote extension host (code-server, SSH) a
 * pattern-only selector never matches and the provider is silently never called.
 */
export const COMPLETION_SELECTOR: vscode.DocumentSelector = [
  { scheme: 'file' },
  { scheme: 'untitled' },
  { scheme: 'vscode-notebook-cell' },
  { scheme: 'vscode-remote' },
];

export interface CompletionFeatureDeps {
  source: ServerConnectionSource;
  log: vscode.LogOutputChannel;
  /** The main Strata status item says "(off)" while completions are off. */
  statusBar?: { setEnabled(enabled: boolean): void };
}

export class CompletionFeature implements vscode.Disposable {
  readonly engine: CompletionEngine;
  readonly tracker: ContextTracker;
  readonly provider: StrataInlineCompletionProvider;
  readonly log: vscode.LogOutputChannel;
  private readonly statusItem = new CompletionStatusItem();
  private readonly disposables: vscode.Disposable[] = [];
  private warnedNoFim = new Set<string>();

  constructor(private readonly deps: CompletionFeatureDeps) {
    const { source, log } = deps;
    this.log = log;
    const settings = () => strataConfig().completion.engine;
    this.engine = new CompletionEngine(() => source.current('fim').client, settings, { log: (level, msg) => log[level](msg) });
    this.tracker = new ContextTracker(this.engine, settings, log);
    this.provider = new StrataInlineCompletionProvider(this);
    const sub = this.engine.status.onChange((s) => {
      this.refresh();
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
      vscode.languages.registerInlineCompletionItemProvider(COMPLETION_SELECTOR, this.provider),
      onDidChangeStrataConfig(({ event }) => {
        if (event && affectsAny(event, COMPLETION_RESET_SETTINGS)) {
          this.engine.reconfigure();
          this.engine.clearCaches();
        }
        this.refresh();
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.engine.status.setSkipped(undefined)),
      ...registerCommands('completion', {
        [ACCEPTED_COMMAND]: () => this.onAccepted(),
        'strata.completion.trigger': () => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger'),
        'strata.completion.showStatus': () => this.showStatus(),
        // For tests and bug reports: what the engine did (requests, cache hits, CPU per completion).
        'strata.completion.stats': () => this.statsReport(),
      }),
      ...registerCommands('completionToggle', { 'strata.toggleCompletions': () => this.toggle() }),
    );
    this.refresh();
  }

  /** Shows whether completions are on, and how they are doing, from the current snapshot. */
  private refresh(enabled = strataConfig().completion.enabled): void {
    this.statusItem.show(this.engine.status.snapshot, enabled);
    this.deps.statusBar?.setEnabled(enabled);
  }

  private async toggle(): Promise<boolean> {
    const next = !strataConfig().completion.enabled;
    await strataSettings('strata').update('completion.enabled', next, vscode.ConfigurationTarget.Global);
    this.refresh(next);
    return next;
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
    const pick = await vscode.window.showInformationMessage(
      `Strata completions: ${lines.join(' ')}`,
      'Show Log',
      strataConfig().completion.enabled ? 'Turn Off' : 'Turn On',
    );
    if (pick === 'Show Log') this.log.show(true);
    else if (pick) await vscode.commands.executeCommand('strata.toggleCompletions');
  }

  dispose(): void {
    this.engine.cancel();
    for (const d of this.disposables) d.dispose();
  }
}
