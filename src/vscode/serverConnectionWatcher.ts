import * as fs from 'fs';
import { LlamaClient } from '../core/llama/client';
import { defaultConnectionFile, readServerConnection, ServerConnection } from '../core/llama/serverConnection';
import { connectionFileSetting } from './settings';

// The server can be restarted (new port, new key) while windows stay open, so the connection
// is re-read whenever the file changes rather than once at activation.

export class ServerConnectionSource {
  private cached?: { file: string; mtimeMs: number; conn: ServerConnection; client: LlamaClient };

  file(): string {
    return connectionFileSetting() ?? defaultConnectionFile();
  }

  /** Throws ConnectionFileError with an actionable message when there is no server. */
  current(): { conn: ServerConnection; client: LlamaClient } {
    const file = this.file();
    let mtimeMs = -1;
    try { mtimeMs = fs.statSync(file).mtimeMs; } catch { /* readServerConnection explains */ }
    if (this.cached && this.cached.file === file && this.cached.mtimeMs === mtimeMs) return this.cached;
    const conn = readServerConnection(file);
    this.cached = { file, mtimeMs, conn, client: new LlamaClient(conn) };
    return this.cached;
  }
}
