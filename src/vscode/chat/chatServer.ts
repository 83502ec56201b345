import * as path from 'path';
import * as vscode from 'vscode';
import { modelDisplayName } from '../../core/chat/conversation';
import { LlamaTokenCounter, TokenCounter } from '../../core/chat/tokenCounter';
import { LlamaClient } from '../../core/llama/client';
import { ServerConnection } from '../../core/llama/serverConnection';
import { ServerConnectionSource } from '../serverConnectionSource';

// The one place where the chat learns about its llama-server: which client to use, the model's
// /props (name, context size) read at most every 15 s, and when the server changed (today: the
// connection file's watcher). Everything else in the chat asks `info()` and listens to
// `onDidChange`, so replacing how server changes arrive touches only this file.

/** Used when /props does not answer: small enough to fit any model llama-server loads. */
export const FALLBACK_CONTEXT_SIZE = 4096;

const SERVER_INFO_TTL_MS = 15_000;

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
    const file = source.file();
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(file)), path.basename(file)));
    const onServerFile = () => {
      this.cached = undefined;
      this.changed.fire();
    };
    this.disposables.push(watcher, watcher.onDidChange(onServerFile), watcher.onDidCreate(onServerFile), watcher.onDidDelete(onServerFile));
  }

  /** The chat's server and what /props says of it; throws an actionable error when there is no server. */
  async info(): Promise<ChatServerInfo> {
    const { conn, client } = this.source.current('chat');
    const cached = this.cached;
    if (cached && cached.client === client && Date.now() - cached.at < SERVER_INFO_TTL_MS) return cached;
    const info: ChatServerInfo = {
      client, conn, at: Date.now(),
      counter: cached && cached.client === client ? cached.counter : new LlamaTokenCounter(conn),
      model: modelDisplayName(conn.model),
    };
    try {
      const props = await client.props(AbortSignal.timeout(3000));
      info.contextSize = props.default_generation_settings?.n_ctx;
      info.model = modelDisplayName(props.model_path) ?? info.model;
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
