import * as path from 'path';
import * as vscode from 'vscode';
import { LlamaClient } from '../core/llama/client';
import { readServerConnection } from '../core/llama/serverConnection';
import { readServerModel } from '../core/llama/serverModel';
import { StatusBar } from './serverStatus';
import { ServerConnectionSource } from './serverConnectionSource';

// A llama-server this window did not start: announced in the connection file (server.json, by
// `npm start`, the sidecar of another user setup or a script). Completion and chat already use it;
// this tells the status bar, so that it names that server's model instead of "no model". The file
// is watched, and the server asked for /health when it changes and every 30 s while it exists
// (a server that died leaves its file behind).

const RECHECK_MS = 30_000;

export class ExternalServerWatch implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private timer?: NodeJS.Timeout;
  private checking = false;
  private again = false;

  constructor(
    private readonly source: ServerConnectionSource,
    private readonly statusBar: StatusBar,
    private readonly log: vscode.LogOutputChannel,
  ) {
    const file = source.file();
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(file)), path.basename(file)));
    const on = () => void this.check();
    this.disposables.push(w, w.onDidCreate(on), w.onDidChange(on), w.onDidDelete(on));
    this.timer = setInterval(on, RECHECK_MS);
    void this.check();
  }

  /** Reads the connection file and asks its server; sets or clears the status bar's external server. */
  async check(): Promise<void> {
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = true;
    try {
      do {
        this.again = false;
        await this.checkOnce();
      } while (this.again);
    } finally {
      this.checking = false;
    }
  }

  private async checkOnce(): Promise<void> {
    const file = this.source.file();
    let conn;
    try {
      conn = readServerConnection(file);
    } catch {
      this.statusBar.setExternal(undefined);
      return;
    }
    const client = new LlamaClient(conn);
    const up = await client.health(AbortSignal.timeout(3000)).catch(() => false);
    if (!up) {
      this.statusBar.setExternal(undefined);
      return;
    }
    let model = conn.model;
    if (!model) model = (await readServerModel(client, 3000).catch(() => undefined))?.modelPath;
    this.log.debug(`connection file ${file}: llama-server at ${conn.url}${model ? ` with ${model}` : ''}`);
    this.statusBar.setExternal({ url: conn.url, model, via: file });
  }

  dispose(): void {
    clearInterval(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}
