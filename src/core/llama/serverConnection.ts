import * as fs from 'fs';
import * as path from 'path';
import { strataStateDir } from '../paths';

// How a window finds the llama-server it should talk to. Whoever starts llama-server (the sidecar
// daemon, src/daemon/supervisor.ts; the test harness; someone who runs a server by hand and sets
// strata.server.connectionFile) writes this file, mode 0600, because it holds the server's API key.
// Windows prefer the endpoint the daemon reports over its socket (src/vscode/serverConnectionSource.ts)
// and read this file when there is none.

export interface ServerConnection {
  /** Base URL, always loopback, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The value llama-server was started with via --api-key. */
  apiKey: string;
  /** Model file the server loaded, for display. */
  model?: string;
  /** pid of llama-server, for status display. */
  pid?: number;
}

export const CONNECTION_FILE_NAME = 'server.json';

export function defaultConnectionFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(strataStateDir(env), CONNECTION_FILE_NAME);
}

export class ConnectionFileError extends Error {}

export function readServerConnection(file = defaultConnectionFile()): ServerConnection {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConnectionFileError(
        `No Strata server is running (${file} does not exist): run "Strata: Start Server", or start the server that writes this file.`,
      );
    }
    throw new ConnectionFileError(`Cannot read the Strata server connection file ${file}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConnectionFileError(`The Strata server connection file ${file} is not valid JSON: delete it and restart the server.`);
  }
  const c = parsed as Partial<ServerConnection>;
  if (typeof c.url !== 'string' || typeof c.apiKey !== 'string') {
    throw new ConnectionFileError(`The Strata server connection file ${file} lacks "url" or "apiKey": delete it and restart the server.`);
  }
  const host = new URL(c.url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]') {
    // The completion path sends source code; it must never leave the machine by accident.
    throw new ConnectionFileError(`Refusing a non-loopback llama-server URL ${c.url} from ${file}.`);
  }
  return { url: c.url, apiKey: c.apiKey, model: c.model, pid: c.pid };
}

/** Writes atomically (temp + rename) with mode 0600 so a reader never sees half a file or another user the key. */
export function writeServerConnection(conn: ServerConnection, file = defaultConnectionFile()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(conn, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function removeServerConnection(file = defaultConnectionFile()): void {
  fs.rmSync(file, { force: true });
}
