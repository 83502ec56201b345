import * as vscode from 'vscode';
import { CompletionResult } from '../core/completion/completionEngine';
import { ServerConnectionSource } from './serverConnectionWatcher';

// Status bar item and the "Show Server Status" command.

export interface ServerStatusReport {
  connected: boolean;
  url?: string;
  model?: string;
  ready?: boolean;
  contextSize?: number;
  error?: string;
}

export async function collectServerStatus(source: ServerConnectionSource): Promise<ServerStatusReport> {
  try {
    const { conn, client } = source.current();
    const ready = await client.health(AbortSignal.timeout(3000));
    let contextSize: number | undefined;
    let model = conn.model;
    if (ready) {
      const props = await client.props(AbortSignal.timeout(3000)).catch(() => undefined);
      contextSize = props?.default_generation_settings?.n_ctx;
      model = model ?? props?.model_path;
    }
    return { connected: true, url: conn.url, model, ready, contextSize };
  } catch (e) {
    return { connected: false, error: (e as Error).message };
  }
}

export function describeStatus(s: ServerStatusReport): string {
  if (!s.connected) return `Strata: no server. ${s.error ?? ''}`.trim();
  const name = s.model ? s.model.split(/[\\/]/).pop() : 'unknown model';
  return `Strata: llama-server at ${s.url} with ${name}: ${s.ready ? 'ready' : 'not ready (loading or stopped)'}${s.contextSize ? `, context ${s.contextSize}` : ''}.`;
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = 'Strata';
    this.item.text = '$(sparkle) Strata';
    this.item.command = 'strata.showServerStatus';
    this.item.tooltip = 'Strata Coder: no completion yet';
    this.item.show();
  }

  showCompletion(r: CompletionResult): void {
    this.item.tooltip = r.fromCache
      ? 'Strata: last completion served from the local cache'
      : `Strata: last completion ${r.latencyMs} ms, prompt ${r.promptTokens ?? '?'} tokens (${r.cachedTokens ?? '?'} cached)`;
  }

  setEnabled(enabled: boolean): void {
    this.item.text = enabled ? '$(sparkle) Strata' : '$(circle-slash) Strata';
  }

  dispose(): void {
    this.item.dispose();
  }
}
