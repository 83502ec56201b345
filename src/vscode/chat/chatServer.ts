import * as vscode from 'vscode';
import { modelDisplayName } from '../../core/chat/conversation';
import { LlamaTokenCounter, TokenCounter } from '../../core/chat/tokenCounter';
import { LlamaClient } from '../../core/llama/client';
import { ServerConnection } from '../../core/llama/serverConnection';
import { FALLBACK_CONTEXT_SIZE, readServerModel } from '../../core/llama/serverModel';
import { ServerConnectionSource } from '../serverConnectionSource';

// The one place where the chat learns about its llama-server: which client to use, the model's
// /props (name, context size, read once per server by readServerModel), and when the chat's
// server changed: ServerConnectionSource's event for the 'chat' role, which covers the daemon's
// report, a peer placement and the connection file alike. Everything else in the chat asks
// `info()` and listens to `onDidChange`.

export { FALLBACK_CONTEXT_SIZE };

export interface ChatServerInfo {
  client: LlamaClient;
  conn: ServerConnection;
  model?: string;
  contextSize?: number;
  counter: TokenCounter;
  at: number;
}

export class ChatServer implements vscode.Disposable {
  private cached?: ChatServerInfo;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires after the server changed (restart, new port or key, another model); `info()` then reads it afresh. */
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(
    private readonly source: ServerConnectionSource,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      source.onDidChangeServer((c) => {
        if (c.role !== 'chat') return;
        this.cached = undefined;
        this.changed.fire();
      }),
    );
  }

  /** The chat's server and what /props says of it; throws an actionable error when there is no server. */
  async info(): Promise<ChatServerInfo> {
    const { conn, client } = this.source.current('chat');
    const cached = this.cached;
    // A failed /props is not kept: a server still loading is asked again on the next question.
    if (cached && cached.client === client && cached.contextSize !== undefined) return cached;
    const info: ChatServerInfo = {
      client,
      conn,
      at: Date.now(),
      counter: cached && cached.client === client ? cached.counter : new LlamaTokenCounter(conn),
      model: modelDisplayName(conn.model),
    };
    try {
      const m = await readServerModel(client, 3000);
      info.contextSize = m.contextSize;
      info.model = modelDisplayName(m.modelPath) ?? info.model;
    } catch (e) {
      this.log.warn(`chat: llama-server /props failed (${(e as Error).message}); assuming a ${FALLBACK_CONTEXT_SIZE}-token context`);
    }
    this.cached = info;
    return info;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
