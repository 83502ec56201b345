import * as path from 'path';
import type { ClusterSummary, ServerStatus } from '../../core/protocol';

// What the status bar item says, as a pure function of the window's view of the sidecar (unit
// tested without VS Code). One short text, a tooltip with the details, and the command a click
// runs: the one that fixes the state where there is one.

export type ProblemKind = 'no-model' | 'no-binary' | 'bad-setting' | 'sidecar' | 'busy';

export interface Problem {
  kind: ProblemKind;
  /** One actionable sentence. */
  message: string;
}

export interface Activity {
  kind: 'build' | 'download' | 'benchmark';
  /** 0..100 where known. */
  percent?: number;
  message: string;
}

export interface ViewInput {
  completionsEnabled: boolean;
  problem?: Problem;
  activity?: Activity;
  connecting?: boolean;
  /** The daemon's view of llama-server; absent when no daemon is connected. */
  server?: ServerStatus;
  /** Label of the model this window wants (its plan). */
  wantedLabel?: string;
  /** The server was stopped with "Stop Server" in this window. */
  userStopped?: boolean;
  /** Average generation speed llama-server reports. */
  tokPerSec?: number;
  binaryPath?: string;
  binaryDescription?: string;
  daemonPid?: number;
  clients?: number;
  /** An error of this window's last request that the daemon status does not carry. */
  lastError?: string;
  /** The daemon's cluster: the split in effect, placed servers, peers up. */
  cluster?: ClusterSummary;
  /** A llama-server this window did not start that answers (a connection file from `npm start` or another tool). */
  external?: ExternalServer;
}

export interface ExternalServer {
  url: string;
  /** Model file or name it reports. */
  model?: string;
  /** Where it was announced (the connection file). */
  via: string;
}

export interface ViewCommand {
  command: string;
  arguments?: unknown[];
  title: string;
}

export interface ViewModel {
  text: string;
  /** Markdown. */
  tooltip: string;
  command: ViewCommand;
  severity?: 'error' | 'warning';
}

const SHOW_STATUS: ViewCommand = { command: 'strata.showServerStatus', title: 'Show Server Status' };
const START: ViewCommand = { command: 'strata.server.start', title: 'Start Server' };
const PICK_MODEL: ViewCommand = { command: 'strata.models.switch', title: 'Pick a model' };
const SERVER_SETTING: ViewCommand = { command: 'workbench.action.openSettings', arguments: ['strata.server'], title: 'Open Strata server settings' };

function pct(p: number | undefined): string {
  return p === undefined ? '' : ` ${Math.max(0, Math.min(100, Math.floor(p)))}%`;
}

function mdEscape(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}

export function describeView(v: ViewInput): ViewModel {
  const details: string[] = [];
  const add = (label: string, value: string | number | undefined): void => {
    if (value !== undefined && value !== '') details.push(`**${label}:** ${mdEscape(String(value))}`);
  };
  const s = v.server;
  const label = s?.label ?? v.wantedLabel;
  add('Model', label);
  add('llama-server', v.binaryPath ? `${v.binaryPath}${v.binaryDescription ? ` (${v.binaryDescription})` : ''}` : undefined);
  if (s?.pid) add('llama-server pid', s.pid);
  if (v.daemonPid) add('Sidecar', `pid ${v.daemonPid}${v.clients !== undefined ? `, ${v.clients} window${v.clients === 1 ? '' : 's'}` : ''}`);
  const c = v.cluster;
  if (c?.split) add('Split', `${c.split.summary} (peers: ${c.split.peers.join(', ')})`);
  for (const pl of c?.placements ?? []) {
    add(
      pl.role === 'fim' ? 'Completions' : 'Chat',
      pl.phase === 'ready' ? `${pl.model} on ${pl.peer}` : `${pl.model} on ${pl.peer}: ${pl.phase}${pl.error ? ` (${pl.error})` : ''}`,
    );
  }
  if (c && c.peers.total > 0) add('Peers', `${c.peers.up} of ${c.peers.total} reachable`);
  if (!v.completionsEnabled) details.push('Inline completions are **off** ("Strata: Toggle Inline Completions").');
  const tooltip = (head: string): string => [`**Strata Coder** — ${mdEscape(head)}`, ...details].join('\n\n');

  if (v.activity) {
    const a = v.activity;
    const icon = a.kind === 'download' ? '$(cloud-download)' : a.kind === 'benchmark' ? '$(pulse)' : '$(sync~spin)';
    const word = a.kind === 'download' ? 'downloading' : a.kind === 'benchmark' ? 'benchmarking' : 'building';
    return { text: `${icon} Strata: ${word}${pct(a.percent)}`, tooltip: tooltip(a.message), command: SHOW_STATUS };
  }
  if (v.problem) {
    const p = v.problem;
    switch (p.kind) {
      case 'no-model': {
        // Another window's server runs: this window uses it too (completion and chat follow the sidecar).
        if (v.server?.phase === 'ready') {
          details.unshift('This window has no model configured (**strata.model.path**); it uses the model another window loaded.');
          break;
        }
        // A server this window did not start answers it: say which model, not "no model".
        const placed = c?.placements?.find((pl) => pl.phase === 'ready');
        if (placed) {
          return {
            text: `$(sparkle) Strata · ${shortLabel(placed.model)} on ${placed.peer}`,
            tooltip: tooltip(`completions and chat use ${placed.model} on the peer ${placed.peer}; this window has no model of its own`),
            command: SHOW_STATUS,
          };
        }
        if (v.external) {
          const e = v.external;
          return {
            text: `$(sparkle) Strata · ${shortLabel(e.model ?? 'llama-server')}`,
            tooltip: tooltip(
              `this window uses the llama-server at ${e.url}${e.model ? ` (${e.model})` : ''}, announced in ${e.via}; it has no model of its own ("Strata: Switch Model" picks one)`,
            ),
            command: SHOW_STATUS,
          };
        }
        return { text: '$(circle-slash) Strata: no model', tooltip: tooltip(`${p.message} Click to pick one.`), command: PICK_MODEL, severity: 'warning' };
      }
      case 'bad-setting':
        return { text: '$(warning) Strata: check settings', tooltip: tooltip(p.message), command: SERVER_SETTING, severity: 'warning' };
      case 'no-binary':
        return {
          text: '$(warning) Strata: no llama-server',
          tooltip: tooltip(`${p.message} Click for the options.`),
          command: SHOW_STATUS,
          severity: 'warning',
        };
      case 'sidecar':
        return { text: '$(error) Strata: sidecar error', tooltip: tooltip(p.message), command: SHOW_STATUS, severity: 'error' };
      case 'busy':
        // Another window's model runs; this window can still use it, so fall through to the phase
        // when it is ready, with a note.
        details.unshift(mdEscape(p.message));
        break;
    }
  }
  if (v.connecting && !s) return { text: '$(sync~spin) Strata: starting', tooltip: tooltip('connecting to the Strata sidecar'), command: SHOW_STATUS };
  const off = v.completionsEnabled ? '' : ' (off)';
  if (!s) {
    if (v.lastError) return { text: '$(error) Strata: error', tooltip: tooltip(v.lastError), command: SHOW_STATUS, severity: 'error' };
    return {
      text: `$(debug-stop) Strata: stopped${off}`,
      tooltip: tooltip('the server is not running. Click to see the status; "Strata: Start Server" starts it.'),
      command: SHOW_STATUS,
    };
  }
  switch (s.phase) {
    case 'ready': {
      const icon = v.completionsEnabled ? '$(sparkle)' : '$(circle-slash)';
      const speed = v.tokPerSec && v.tokPerSec > 0 ? ` · ${v.tokPerSec >= 100 ? Math.round(v.tokPerSec) : v.tokPerSec.toFixed(1)} tok/s` : '';
      const peers = c?.split ? ` +${c.split.peers.length} peer${c.split.peers.length === 1 ? '' : 's'}` : '';
      return { text: `${icon} Strata · ${shortLabel(label)}${peers}${speed}`, tooltip: tooltip(`ready at ${s.endpoint?.url ?? '?'}`), command: SHOW_STATUS };
    }
    case 'loading':
      return {
        text: `$(sync~spin) Strata: loading${pct(s.progress !== undefined ? s.progress * 100 : undefined)}`,
        tooltip: tooltip(`loading ${label ?? 'the model'}${s.stage ? ` (${s.stage})` : ''}`),
        command: SHOW_STATUS,
      };
    case 'restarting':
      return {
        text: '$(sync~spin) Strata: restarting',
        tooltip: tooltip(`llama-server stopped unexpectedly (${s.crashes} time${s.crashes === 1 ? '' : 's'}); restarting it`),
        command: SHOW_STATUS,
        severity: 'warning',
      };
    case 'stopping':
      return { text: '$(sync~spin) Strata: stopping', tooltip: tooltip('stopping llama-server'), command: SHOW_STATUS };
    case 'failed': {
      const tail = s.error?.logTail
        ?.slice(-5)
        .map((l) => `\`${l.replace(/`/g, "'")}\``)
        .join('  \n');
      return {
        text: '$(error) Strata: error',
        tooltip: [tooltip(s.error?.message ?? 'llama-server failed'), tail ? `Last lines:  \n${tail}` : ''].filter(Boolean).join('\n\n'),
        command: SHOW_STATUS,
        severity: 'error',
      };
    }
    case 'stopped': {
      if (v.lastError) return { text: '$(error) Strata: error', tooltip: tooltip(v.lastError), command: SHOW_STATUS, severity: 'error' };
      const why =
        s.stoppedReason === 'idle'
          ? 'unloaded after idle time; the next completion loads it again'
          : v.userStopped
            ? 'stopped; "Strata: Start Server" starts it'
            : 'not running';
      return {
        text: `$(debug-stop) Strata: ${s.stoppedReason === 'idle' ? 'idle' : 'stopped'}${off}`,
        tooltip: tooltip(why),
        command: s.stoppedReason === 'idle' ? SHOW_STATUS : START,
      };
    }
  }
}

function shortLabel(label: string | undefined): string {
  if (!label) return 'model';
  const base = path.basename(label).replace(/\.gguf$/i, '');
  return base.length > 28 ? `${base.slice(0, 27)}…` : base;
}
