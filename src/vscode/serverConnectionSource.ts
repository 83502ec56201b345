import * as fs from 'fs';
import { LlamaClient } from '../core/llama/client';
import { defaultConnectionFile, readServerConnection, ServerConnection } from '../core/llama/serverConnection';
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

/** Who asks: inline completions or chat. */
export type ServerRole = 'fim' | 'chat';

export class ServerConnectionSource {
  private cached?: { file: string; mtimeMs: number; conn: ServerConnection; client: LlamaClient };
  private live?: { conn: ServerConnection; client: LlamaClient };
  private demand?: () => Error | undefined;
  private readonly placed = new Map<ServerRole, { conn: ServerConnection; client: LlamaClient }>();

  file(): string {
    return connectionFileSetting() ?? defaultConnectionFile();
  }

  /** The sidecar's ready server, or undefined when it has none. */
  setLive(conn: ServerConnection | undefined): void {
    if (!conn) {
      this.live = undefined;
      return;
    }
    const l = this.live;
    if (l && l.conn.url === conn.url && l.conn.apiKey === conn.apiKey) return;
    this.live = { conn, client: new LlamaClient(conn) };
  }

  /** A placed server for this role (ready), or undefined when it is not (or no longer) placed. */
  setPlaced(role: ServerRole, conn: ServerConnection | undefined): void {
    const cur = this.placed.get(role);
    if (!conn) {
      this.placed.delete(role);
      return;
    }
    if (cur && cur.conn.url === conn.url && cur.conn.apiKey === conn.apiKey) return;
    this.placed.set(role, { conn, client: new LlamaClient(conn) });
  }

  /** The placed server serving this role, if any (for status display). */
  placedFor(role: ServerRole): ServerConnection | undefined {
    return this.placed.get(role)?.conn;
  }

  setDemand(fn: (() => Error | undefined) | undefined): void {
    this.demand = fn;
  }

  /** Throws an error with an actionable message when there is no server. */
  current(role?: ServerRole): { conn: ServerConnection; client: LlamaClient } {
    // An explicit connection file means "that server", never the sidecar's.
    const explicit = connectionFileSetting();
    const placed = role && !explicit ? this.placed.get(role) : undefined;
    if (placed) return placed;
    if (this.live && !explicit) return this.live;
    try {
      return this.fromFile();
    } catch (e) {
      const why = this.demand?.();
      throw why ?? e;
    }
  }

  private fromFile(): { conn: ServerConnection; client: LlamaClient } {
    const file = this.file();
    let mtimeMs = -1;
    try { mtimeMs = fs.statSync(file).mtimeMs; } catch { /* readServerConnection explains */ }
    if (this.cached && this.cached.file === file && this.cached.mtimeMs === mtimeMs) return this.cached;
    const conn = readServerConnection(file);
    this.cached = { file, mtimeMs, conn, client: new LlamaClient(conn) };
    return this.cached;
  }
}
