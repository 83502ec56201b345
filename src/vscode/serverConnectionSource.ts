import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { LlamaClient } from '../core/llama/client';
import { defaultConnectionFile, readServerConnection, ServerConnection } from '../core/llama/serverConnection';
import { readServerModel, ServerModel } from '../core/llama/serverModel';
import { connectionFileSetting } from './settings';

// How completion and chat reach llama-server. Two feeds:
//   - live: the endpoint the sidecar daemon reports over its socket when its server is ready
//     (set by the SidecarController; no file I/O on the keystroke path);
//   - the connection file (server.json), which the daemon also writes, and which a server
//     started by hand or by a test can write too. Re-read whenever it changes (a restart means
//     a new port and key while windows stay open).
// When neither has a server, `demand` (set by the controller) may start loading the model and
// returns the error to show, e.g. "Strata is loading the model".
// Placement mode adds a third, per role: a whole model on a peer for completions (fim) or chat,
// reached through the sidecar's loopback tunnel. It wins for its role while the sidecar says it
// is ready; when the peer goes away the role falls back to the local server.
//
// The server's lifetime: whichever feed changed (the daemon's report, a placement, the file),
// `onDidChangeServer` fires once per role whose server is now another one, with that server's
// model read from /props once. Chat status and the language-model provider follow it.

/** Who asks: inline completions or chat. */
export type ServerRole = 'fim' | 'chat';

export const SERVER_ROLES: readonly ServerRole[] = ['fim', 'chat'];

/** A role's server changed: the new one with its model, or why there is none. */
export interface ServerChange {
  role: ServerRole;
  server?: { conn: ServerConnection; client: LlamaClient; model?: ServerModel };
  error?: string;
}

type Endpoint = { conn: ServerConnection; client: LlamaClient };

/** /props of a new server: long enough for a busy machine, short enough for a status line. */
const MODEL_READ_MS = 5000;

export class ServerConnectionSource implements vscode.Disposable {
  private cached?: { file: string; mtimeMs: number; conn: ServerConnection; client: LlamaClient };
  private live?: Endpoint;
  private demand?: () => Error | undefined;
  private readonly placed = new Map<ServerRole, Endpoint>();
  /** The server (client) each role was last announced with, or the error text. */
  private readonly announced = new Map<ServerRole, LlamaClient | string>();
  private readonly changed = new vscode.EventEmitter<ServerChange>();
  private readonly disposables: vscode.Disposable[] = [this.changed];
  readonly onDidChangeServer = this.changed.event;

  constructor() {
    const file = this.file();
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(file)), path.basename(file)));
    const recheck = () => this.recheck();
    this.disposables.push(
      w,
      w.onDidCreate(recheck),
      w.onDidChange(recheck),
      w.onDidDelete(recheck),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('strata.server.connectionFile')) recheck();
      }),
    );
  }

  file(): string {
    return connectionFileSetting() ?? defaultConnectionFile();
  }

  /** The sidecar's ready server, or undefined when it has none. */
  setLive(conn: ServerConnection | undefined): void {
    const l = this.live;
    if (!conn) this.live = undefined;
    else if (!l || l.conn.url !== conn.url || l.conn.apiKey !== conn.apiKey) this.live = { conn, client: new LlamaClient(conn) };
    if (this.live !== l) this.recheck();
  }

  /** A placed server for this role (ready), or undefined when it is not (or no longer) placed. */
  setPlaced(role: ServerRole, conn: ServerConnection | undefined): void {
    const cur = this.placed.get(role);
    if (!conn) this.placed.delete(role);
    else if (!cur || cur.conn.url !== conn.url || cur.conn.apiKey !== conn.apiKey) this.placed.set(role, { conn, client: new LlamaClient(conn) });
    if (this.placed.get(role) !== cur) this.recheck();
  }

  /** The placed server serving this role, if any (for status display). */
  placedFor(role: ServerRole): ServerConnection | undefined {
    return this.placed.get(role)?.conn;
  }

  setDemand(fn: (() => Error | undefined) | undefined): void {
    this.demand = fn;
  }

  /** Throws an error with an actionable message when there is no server. */
  current(role?: ServerRole): Endpoint {
    try {
      return this.resolve(role);
    } catch (e) {
      const why = this.demand?.();
      throw why ?? e;
    }
  }

  /** The server a role uses now, without asking the daemon to load one (throws when there is none). */
  private resolve(role?: ServerRole): Endpoint {
    // An explicit connection file means "that server", never the sidecar's.
    const explicit = connectionFileSetting();
    const placed = role && !explicit ? this.placed.get(role) : undefined;
    if (placed) return placed;
    if (this.live && !explicit) return this.live;
    return this.fromFile();
  }

  /** Announces each role whose server is another one than last announced, with its model. */
  recheck(): void {
    for (const role of SERVER_ROLES) {
      let now: Endpoint | string;
      try {
        now = this.resolve(role);
      } catch (e) {
        now = (e as Error).message;
      }
      const key = typeof now === 'string' ? now : now.client;
      if (this.announced.get(role) === key) continue;
      this.announced.set(role, key);
      if (typeof now === 'string') {
        this.changed.fire({ role, error: now });
        continue;
      }
      const server = now;
      void readServerModel(server.client, MODEL_READ_MS)
        .catch(() => undefined)
        .then((model) => {
          // A newer change for this role was announced meanwhile: this one is stale.
          if (this.announced.get(role) === server.client) this.changed.fire({ role, server: { ...server, model } });
        });
    }
  }

  private fromFile(): Endpoint {
    const file = this.file();
    let mtimeMs = -1;
    try {
      mtimeMs = fs.statSync(file).mtimeMs;
    } catch {
      /* readServerConnection explains */
    }
    if (this.cached && this.cached.file === file && this.cached.mtimeMs === mtimeMs) return this.cached;
    const conn = readServerConnection(file);
    this.cached = { file, mtimeMs, conn, client: new LlamaClient(conn) };
    return this.cached;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
