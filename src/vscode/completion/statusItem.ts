import * as vscode from 'vscode';
import { StatusSnapshot } from '../../core/completion/completionStatus';

// One small status-bar item for inline completions: one state at a time (ready with the last
// latency, model loading, no server, no FIM support, failing, or off in this file), the figures
// of the last completion and the keys in its tooltip. Failures never pop up (only "no FIM" does,
// once per model, from index.ts).

const KEYS = 'Tab accepts · Ctrl+→ accepts the next word · Ctrl+Alt+→ the next line · Alt+\\ asks now · Esc dismisses';

export class CompletionStatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('strata.completion', vscode.StatusBarAlignment.Right, 99);

  constructor() {
    this.item.name = 'Strata Completions';
    this.item.command = 'strata.completion.showStatus';
    this.show({ state: 'idle', message: '' }, true);
  }

  show(s: StatusSnapshot, enabled: boolean): void {
    if (!enabled) {
      this.item.hide();
      return;
    }
    const last = s.last
      ? `Last completion: ${s.last.latencyMs} ms, prompt ${fmt(s.last.promptTokens)} tokens evaluated, ${fmt(s.last.cachedTokens)} reused from the server's cache.`
      : 'No completion yet.';
    let text: string;
    let tip: string;
    let warn = false;
    switch (s.state) {
      case 'loading':
        text = '$(loading~spin) FIM';
        tip = s.message;
        break;
      case 'down':
        text = '$(debug-disconnect) FIM';
        tip = s.message;
        warn = true;
        break;
      case 'no-fim':
        text = '$(circle-slash) FIM';
        tip = s.message;
        warn = true;
        break;
      case 'error':
        text = '$(warning) FIM';
        tip = s.message;
        warn = true;
        break;
      default:
        if (s.skipped) {
          text = '$(dash) FIM';
          tip = `No inline completions in this file: ${s.skipped}.`;
        } else {
          text = s.last ? `$(zap) ${s.last.latencyMs} ms` : '$(zap) FIM';
          tip = last;
        }
    }
    this.item.text = text;
    this.item.tooltip = new vscode.MarkdownString(
      `**Strata inline completions**\n\n${escape(tip)}\n\n${s.state !== 'ready' && s.state !== 'idle' ? escape(last) + '\n\n' : ''}${escape(KEYS)}`,
    );
    this.item.backgroundColor = warn ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}

function fmt(n: number | undefined): string {
  return n === undefined ? '?' : n.toLocaleString('en-US');
}

function escape(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
