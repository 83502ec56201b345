import * as vscode from 'vscode';
import { ServerStatus } from '../../core/protocol';

// One log line per llama-server phase change (the daemon repeats its status often; the log
// should read as a story, not a heartbeat).

export class ServerPhaseLog {
  private last?: string;

  constructor(private readonly log: vscode.LogOutputChannel) {}

  follow(sv: ServerStatus): void {
    const key = `${sv.phase}:${sv.pid ?? ''}`;
    if (key === this.last) return;
    this.last = key;
    const log = this.log;
    switch (sv.phase) {
      case 'ready':
        log.info(`llama-server ready: ${sv.label ?? ''} at ${sv.endpoint?.url} (pid ${sv.pid})`);
        break;
      case 'loading':
        log.info(`loading ${sv.label ?? 'the model'}${sv.pid ? ` (llama-server pid ${sv.pid})` : ''}`);
        break;
      case 'failed':
        log.error(`llama-server failed: ${sv.error?.message ?? '?'}`);
        for (const l of sv.error?.logTail ?? []) log.error(`  | ${l}`);
        break;
      case 'restarting':
        log.warn(`llama-server stopped unexpectedly (crash ${sv.crashes}); the sidecar restarts it`);
        break;
      case 'stopped':
        log.info(`llama-server stopped${sv.stoppedReason ? ` (${sv.stoppedReason})` : ''}`);
        break;
      default:
        break;
    }
  }
}
