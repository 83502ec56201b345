import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newToken } from '../transport/peerHandshake';

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

/** A token must carry at least this much randomness: beyond online guessing and offline search. */
export const MIN_TOKEN_BITS = 128;

/**
 * An upper bound on a token's randomness from its length and the smallest usual alphabet that
 * holds it (hex 4 bits a character, base64/base64url 6, other printable characters 6.6), after the
 * `sp1_` prefix and base64 padding. It cannot tell a random string from a chosen one; it keeps
 * out the short ones.
 */
export function tokenBits(token: string): number {
  const body = token.replace(/^sp1_/, '').replace(/=+$/, '');
  const perChar = /^[0-9a-fA-F]*$/.test(body) ? 4 : /^[A-Za-z0-9+/_-]*$/.test(body) ? 6 : Math.log2(95);
  return Math.floor(body.length * perChar);
}

function checkStrength(token: string, source: string, fix: string): string {
  const bits = tokenBits(token);
  if (bits < MIN_TOKEN_BITS) throw new Error(`${source} carries at most ${bits} bits, fewer than the ${MIN_TOKEN_BITS} a peer token needs: ${fix}.`);
  return token;
}

export function loadOrCreateToken(opts: { file?: string; env?: NodeJS.ProcessEnv; rotate?: boolean; create?: boolean } = {}): LoadedToken {
  const env = opts.env ?? process.env;
  if (!opts.file && env.STRATA_PEER_TOKEN && !opts.rotate) {
    const token = checkStrength(
      env.STRATA_PEER_TOKEN.trim(),
      'STRATA_PEER_TOKEN',
      'set it to a token from `strata-peer token` (or `openssl rand -base64 32`), or unset it to use the token file',
    );
    return { token, created: false };
  }
  const file = opts.file ?? defaultTokenFile(env);
  if (!opts.rotate) {
    try {
      const st = fs.statSync(file);
      if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
        throw new Error(`${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}): run "chmod 600 ${file}".`);
      }
      const token = checkStrength(
        fs.readFileSync(file, 'utf8').trim(),
        `The token in ${file}`,
        `run "strata-peer token --rotate${opts.file ? ` --token-file ${file}` : ''}" to make a new one`,
      );
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
