import * as vscode from 'vscode';
import { readServerModel } from '../core/llama/serverModel';
import { LlamaDevice } from '../daemon/installer';
import { ServerConnectionSource } from './serverConnectionSource';
import { describeView, ExternalServer, Problem, ViewInput } from './serverControl/statusView';

// Status bar item and the "Show Server Status" report.

export interface SidecarReport {
  /** The daemon's server phase, or 'no-sidecar' when this window is not connected to one. */
  phase: string;
  daemonPid?: number;
  clients?: number;
  daemonLog?: string;
  serverLog?: string;
  serverPid?: number;
  label?: string;
  progress?: number;
  /** The plan this window wants. */
  wanted?: { modelPath: string; binaryPath: string; args: string[] };
  error?: string;
  logTail?: string[];
  problem?: Problem;
  /** The llama-server this window would run, with what it reports. */
  binary?: { path: string; kind: string; version?: string; commit?: string; builtWith?: string; backends: string[]; devices: LlamaDevice[]; error?: string };
  installedBuilds?: { id: string; backend: string; source: string; hasBench: boolean }[];
  tokPerSec?: number;
}

export interface ServerStatusReport {
  connected: boolean;
  url?: string;
  model?: string;
  ready?: boolean;
  contextSize?: number;
  error?: string;
  sidecar?: SidecarReport;
}

export async function collectServerStatus(source: ServerConnectionSource, sidecar?: () => Promise<SidecarReport | undefined>): Promise<ServerStatusReport> {
  const extra = sidecar ? await sidecar().catch(() => undefined) : undefined;
  const withExtra = (r: ServerStatusReport): ServerStatusReport => (extra ? { ...r, sidecar: extra } : r);
  try {
    const { conn, client } = source.current();
    const ready = await client.health(AbortSignal.timeout(3000));
    let contextSize: number | undefined;
    let model = conn.model;
    if (ready) {
      const m = await readServerModel(client, 3000).catch(() => undefined);
      contextSize = m?.contextSize;
      model = model ?? m?.modelPath;
    }
    return withExtra({ connected: true, url: conn.url, model, ready, contextSize });
  } catch (e) {
    return withExtra({ connected: false, error: (e as Error).message });
  }
}

export function describeStatus(s: ServerStatusReport): string {
  const sc = s.sidecar;
  const bin = sc?.binary;
  const binText = bin?.version ? ` llama.cpp ${bin.version.replace(/^version:\s*/, '')}; backends ${bin.backends.join(', ')}.` : '';
  if (!s.connected) {
    if (sc?.problem && sc.problem.kind !== 'busy') return `Strata: ${sc.problem.message}`;
    if (sc?.phase === 'loading')
      return `Strata: loading ${sc.label ?? 'the model'}${sc.progress !== undefined ? ` (${Math.floor(sc.progress * 100)}%)` : ''}; completions start when it is ready.`;
    if (sc?.phase === 'failed' && sc.error) return `Strata: llama-server failed: ${sc.error}`;
    if (sc?.phase === 'restarting') return 'Strata: llama-server stopped unexpectedly and is restarting.';
    return `Strata: no server. ${s.error ?? ''}`.trim();
  }
  const name = s.model ? s.model.split(/[\\/]/).pop() : 'unknown model';
  return `Strata: llama-server at ${s.url} with ${name}: ${s.ready ? 'ready' : 'not ready (loading or stopped)'}${s.contextSize ? `, context ${s.contextSize}` : ''}.${binText}`;
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('strata.status', vscode.StatusBarAlignment.Right, 100);
  private state: Omit<ViewInput, 'completionsEnabled' | 'external'> = {};
  private external?: ExternalServer;
  private enabled = true;
  /** The text now shown; read by tests through the status command. */
  text = '';

  constructor() {
    this.item.name = 'Strata';
    this.render();
    this.item.show();
  }

  /** Replaces the sidecar part of the state (the controller owns it). */
  setState(state: Omit<ViewInput, 'completionsEnabled' | 'external'>): void {
    this.state = state;
    this.render();
  }

  /** A server this window did not start that answers (ExternalServerWatch owns it). */
  setExternal(external: ExternalServer | undefined): void {
    if (external?.url === this.external?.url && external?.model === this.external?.model) return;
    this.external = external;
    this.render();
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.render();
  }

  private render(): void {
    const vm = describeView({ ...this.state, external: this.external, completionsEnabled: this.enabled });
    this.text = vm.text;
    this.item.text = vm.text;
    const md = new vscode.MarkdownString(vm.tooltip, true);
    md.isTrusted = {
      enabledCommands: [
        'strata.showServerStatus',
        'strata.server.start',
        'strata.server.restart',
        'strata.server.showLogs',
        'strata.models.switch',
        'workbench.action.openSettings',
      ],
    };
    this.item.tooltip = md;
    this.item.command = { command: vm.command.command, title: vm.command.title, arguments: vm.command.arguments };
    this.item.backgroundColor =
      vm.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : vm.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
