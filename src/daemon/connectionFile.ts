// server.json, for readers that do not speak the socket protocol: written when a server is ready,
// removed when that server stops, and only while it still names that server's pid (a later start,
// or another daemon's, may have replaced it meanwhile).

import { readServerConnection, removeServerConnection, writeServerConnection } from '../core/llama/serverConnection';
import { ServerEndpoint } from '../core/protocol';

export class ConnectionFile {
  constructor(
    private readonly file: string,
    private readonly log: (msg: string) => void,
  ) {}

  /** A failed write only costs those readers the server: logged, not thrown. */
  publish(endpoint: ServerEndpoint): void {
    try {
      writeServerConnection({ url: endpoint.url, apiKey: endpoint.apiKey, model: endpoint.model, pid: endpoint.pid }, this.file);
    } catch (e) {
      this.log(`could not write ${this.file}: ${(e as Error).message}`);
    }
  }

  removeIfFor(pid: number): void {
    try {
      if (readServerConnection(this.file).pid !== pid) return;
    } catch {
      return;
    }
    removeServerConnection(this.file);
  }
}
