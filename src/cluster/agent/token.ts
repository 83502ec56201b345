import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newToken } from '../transport/secureChannel';

// The agent's token: one secret shared with the sidecars allowed to use this box. Kept in a
// 0600 file under the user's config dir (or given through STRATA_PEER_TOKEN, e.g. from a
// systemd credential), never on the command line where `ps` would show it.

export function defaultTokenFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'strata-peer', 'token');
}

export interface LoadedToken {
  token: string;
  file?: string;
  /** Created by this call (print it for pairing). */
  created: boolean;
}

export function loadOrCreateToken(opts: { file?: string; env?: NodeJS.ProcessEnv; rotate?: boolean; create?: boolean } = {}): LoadedToken {
  const env = opts.env ?? process.env;
  if (!opts.file && env.STRATA_PEER_TOKEN && !opts.rotate) return { token: env.STRATA_PEER_TOKEN.trim(), created: false };
  const file = opts.file ?? defaultTokenFile(env);
  if (!opts.rotate) {
    try {
      const st = fs.statSync(file);
      if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
        throw new Error(`${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}): run "chmod 600 ${file}".`);
      }
      const token = fs.readFileSync(file, 'utf8').trim();
      if (token.length < 16) throw new Error(`${file} holds no usable token (under 16 characters): delete it and start strata-peer again to make a new one.`);
      return { token, file, created: false };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (opts.create === false) throw new Error(`No token file at ${file}: run "strata-peer token" first.`);
    }
  }
  const token = newToken();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  return { token, file, created: true };
}
