import * as vscode from 'vscode';
import { SidecarStatus } from '../../core/protocol';
import { ServerConnectionSource } from '../serverConnectionSource';

// Feeds the ServerConnectionSource that completion and chat read from the daemon's status: the
// local llama-server while it is ready, and each role placed on a peer (placement mode: completions
// or chat go to a whole model on a peer). Says in the log where each role went, once per change.

export class ConnectionFeed {
  private placedKey = '';

  constructor(
    private readonly source: ServerConnectionSource,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  update(s: SidecarStatus): void {
    const sv = s.server;
    this.source.setLive(
      sv.phase === 'ready' && sv.endpoint ? { url: sv.endpoint.url, apiKey: sv.endpoint.apiKey, model: sv.endpoint.model, pid: sv.endpoint.pid } : undefined,
    );
    this.followPlacements(s);
  }

  /** The daemon is gone, and with it the tunnels to placed servers. */
  clear(): void {
    this.source.setLive(undefined);
    this.source.setPlaced('fim', undefined);
    this.source.setPlaced('chat', undefined);
  }

  private followPlacements(s: SidecarStatus): void {
    const placements = s.cluster?.placements ?? [];
    for (const role of ['fim', 'chat'] as const) {
      const p = placements.find((x) => x.role === role && x.phase === 'ready' && x.url && x.apiKey !== undefined);
      this.source.setPlaced(role, p ? { url: p.url!, apiKey: p.apiKey!, model: `${p.model} on ${p.peer}` } : undefined);
    }
    const key = placements.map((p) => `${p.role}:${p.peer}:${p.phase}`).join(',');
    if (key === this.placedKey) return;
    this.placedKey = key;
    for (const p of placements) {
      const what = p.role === 'fim' ? 'completions' : 'chat';
      if (p.phase === 'ready') this.log.info(`${what}: ${p.model} on peer ${p.peer} (${p.url})`);
      else if (p.phase === 'down' || p.phase === 'failed') this.log.warn(`${what}: ${p.error ?? `peer ${p.peer} is ${p.phase}`}`);
    }
  }
}
