import * as fs from 'fs';
import { loadNative, nativeStatus, spawnGuarded } from '../core/native';

// The first line of defence against orphaned llama-servers: a kernel-enforced tie between the
// daemon and its child, so the child dies with the daemon without anyone noticing first. The
// watchdog and the pid files (watchdog.ts, childRegistry.ts) back it up and work without it.
//
// Two kinds, chosen per platform:
//  - 'wrap': util-linux `setpriv --pdeathsig KILL -- llama-server ...` sets PR_SET_PDEATHSIG and
//    execs llama-server (same pid). The child stays an ordinary child_process with pipes, which
//    the supervisor wants: exact load progress and the stdin tie of router mode (loadProgress.ts).
//  - 'spawn': the native addon's spawnGuarded (src/core/native): PR_SET_PDEATHSIG on Linux, a
//    kqueue watcher on macOS, a kill-on-close job object on Windows. It takes files, not pipes,
//    for stdio, so output goes to the server log and is tailed from there, and router mode is off.
// On Linux the wrapper comes first (same kernel mechanism, keeps the pipes); elsewhere the addon.

export interface GuardedProcess {
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): boolean;
}

export type LifetimeGuard =
  | { readonly kind: 'wrap'; readonly name: string; wrap(cmd: string, args: string[]): { cmd: string; args: string[] } }
  | { readonly kind: 'spawn'; readonly name: string; spawn(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; outputFile: string }): GuardedProcess };

export type GuardMode = 'auto' | 'setpriv' | 'native' | 'none';

/** extensionRoot: where the addon is looked for (the folder above dist/). */
export function selectLifetimeGuard(mode: GuardMode, extensionRoot: string, log: (msg: string) => void): LifetimeGuard | undefined {
  if (mode === 'none') return undefined;
  const setpriv = mode !== 'native' && process.platform === 'linux' ? setprivGuard() : undefined;
  if (setpriv || mode === 'setpriv') {
    if (!setpriv) log('setpriv was asked for but is not available; llama-server runs without a kernel-level guard');
    return setpriv;
  }
  const status = loadNative(extensionRoot);
  if (status.loaded && status.guard && status.guard !== 'pidfile') {
    return {
      kind: 'spawn',
      name: `native ${status.guard}`,
      spawn: (cmd, args, opts) => {
        const child = spawnGuarded(cmd, args, {
          env: opts.env,
          stdin: 'ignore',
          stdout: { path: opts.outputFile },
          stderr: { path: opts.outputFile },
          newProcessGroup: true,
        });
        return { pid: child.pid, exited: child.exited, kill: (s) => child.kill(s) };
      },
    };
  }
  log(`no kernel-level guard for llama-server (${nativeStatus().reason ?? 'native addon without a guard'}); the watchdog and pid files cover it`);
  return undefined;
}

function setprivGuard(): LifetimeGuard | undefined {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutable);
  if (!setpriv) return undefined;
  return {
    kind: 'wrap',
    name: 'setpriv --pdeathsig',
    wrap: (cmd, args) => ({ cmd: setpriv, args: ['--pdeathsig', 'KILL', '--', cmd, ...args] }),
  };
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
