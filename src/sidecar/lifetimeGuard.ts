import * as fs from 'fs';
import * as path from 'path';

// The first line of defence against orphaned llama-servers: a kernel-enforced tie between the
// daemon and its child, so the child dies with the daemon without anyone noticing first. The
// watchdog and the pid files (see watchdog.ts, childRegistry.ts) back it up and work without it.
//
// Sources, best first:
//  - the native addon (src/core/native, optional): PR_SET_PDEATHSIG on Linux, a kill-on-close
//    job object on Windows. It plugs in through the small NativeLifetimeGuard contract below.
//  - util-linux `setpriv --pdeathsig KILL`, present on nearly every Linux: it sets the same
//    flag and execs llama-server, so the process and its pid stay the same.

export interface LifetimeGuard {
  readonly name: string;
  /** Rewrites the command line so that the child is tied to this process. */
  wrap(cmd: string, args: string[]): { cmd: string; args: string[] };
  /** Called with the child's pid once it runs (e.g. to put it in a job object). */
  attach?(pid: number): void;
}

/** What the native addon exports, if it offers a guard. */
export interface NativeLifetimeGuard {
  /** Optional helper executable: `<helper> <cmd> <args...>` sets the tie and execs cmd. */
  pdeathsigHelperPath?: string;
  /** Optional: tie an already running child to this process (Windows job objects). */
  bindChildLifetime?(pid: number): void;
}

export function selectLifetimeGuard(mode: 'auto' | 'none', log: (msg: string) => void): LifetimeGuard | undefined {
  if (mode === 'none') return undefined;
  const native = loadNativeGuard(log);
  if (native) return native;
  if (process.platform === 'linux') {
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutable);
    if (setpriv) {
      return {
        name: 'setpriv --pdeathsig',
        wrap: (cmd, args) => ({ cmd: setpriv, args: ['--pdeathsig', 'KILL', '--', cmd, ...args] }),
      };
    }
  }
  return undefined;
}

function loadNativeGuard(log: (msg: string) => void): LifetimeGuard | undefined {
  const candidates = [
    process.env.STRATA_NATIVE_ADDON,
    path.join(__dirname, 'strata_native.node'),
    path.join(__dirname, '..', 'native', 'build', 'Release', 'strata_native.node'),
  ].filter((p): p is string => !!p && fs.existsSync(p));
  for (const p of candidates) {
    try {
      // A computed path: the bundler must leave this require to run time.
      const req = require;
      const mod = req(p) as { lifetimeGuard?: NativeLifetimeGuard };
      const g = mod.lifetimeGuard;
      if (!g) continue;
      const helper = g.pdeathsigHelperPath && isExecutable(g.pdeathsigHelperPath) ? g.pdeathsigHelperPath : undefined;
      const bind = g.bindChildLifetime?.bind(g);
      if (!helper && !bind) continue;
      return {
        name: `native (${path.basename(p)})`,
        wrap: (cmd, args) => (helper ? { cmd: helper, args: [cmd, ...args] } : { cmd, args }),
        attach: bind,
      };
    } catch (e) {
      log(`native addon ${p} did not load (${(e as Error).message}); using the fallbacks`);
    }
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
