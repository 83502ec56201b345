import * as os from 'os';
import * as path from 'path';

// Where Strata keeps things, per user. Environment overrides exist so that tests (and
// users with unusual setups) can move everything without touching the real home dir.

/** Large rebuildable things: llama.cpp sources and builds, generated models, code-server. */
export function strataCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STRATA_CACHE_DIR) return env.STRATA_CACHE_DIR;
  if (process.platform === 'win32') {
    return path.join(env.LOCALAPPDATA ?? path.join(os.homedir(), 'AppData', 'Local'), 'strata', 'cache');
  }
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Caches', 'strata');
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'strata');
}

/** Small per-user runtime state: lock files, connection files, pid files. */
export function strataStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STRATA_STATE_DIR) return env.STRATA_STATE_DIR;
  if (process.platform === 'win32') {
    return path.join(env.LOCALAPPDATA ?? path.join(os.homedir(), 'AppData', 'Local'), 'strata', 'state');
  }
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support', 'strata');
  return path.join(env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state'), 'strata');
}
