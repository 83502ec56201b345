import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isPidAlive } from './daemonClient/processInfo';

// A secret handed to a child process (llama-server's API key) goes in a file only this user can
// read, never on its command line: `ps` and /proc/<pid>/cmdline show argv to every local user.
// The file sits alone in a fresh 0700 folder, is 0600 itself, and is removed with its folder
// when the child is done (and, failing that, when this process exits). A process killed with
// SIGKILL removes nothing: the folder's name carries its pid, and the next writer in the same
// place removes this user's folders whose writer is gone.

export interface SecretFile {
  readonly path: string;
  /** Removes the file and its folder; safe to call twice. */
  remove(): void;
}

const live = new Set<SecretFile>();
let hooked = false;

/** XDG_RUNTIME_DIR (per-user, in memory, gone at logout) when there is one, else the temp dir. */
function defaultParent(env: NodeJS.ProcessEnv): string {
  const run = env.XDG_RUNTIME_DIR;
  if (run && path.isAbsolute(run)) {
    try {
      if (fs.statSync(run).isDirectory()) return run;
    } catch {
      /* not there: fall back */
    }
  }
  return os.tmpdir();
}

const PREFIX = 'strata-secret-';

/** Removes folders left by writers that died (their pid is in the name); only this user's. */
function sweepLeftovers(parent: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(parent).filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const n of names) {
    const pid = Number(/^strata-secret-(\d+)-/.exec(n)?.[1]);
    if (!pid || pid === process.pid || isPidAlive(pid)) continue;
    const p = path.join(parent, n);
    try {
      const st = fs.lstatSync(p);
      if (st.isDirectory() && st.uid === process.getuid?.()) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      /* gone, or not ours to remove */
    }
  }
}

export function writeSecretFile(secret: string, opts: { parent?: string; name?: string; env?: NodeJS.ProcessEnv } = {}): SecretFile {
  const parent = opts.parent ?? defaultParent(opts.env ?? process.env);
  if (process.platform !== 'win32') sweepLeftovers(parent);
  const dir = fs.mkdtempSync(path.join(parent, `${PREFIX}${process.pid}-`));
  let removed = false;
  const file: SecretFile = {
    path: path.join(dir, opts.name ?? 'key'),
    remove: () => {
      if (removed) return;
      removed = true;
      live.delete(file);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    // mkdtemp makes 0700 already; say it anyway, a umask cannot widen it.
    fs.chmodSync(dir, 0o700);
    // 'wx': never follow or reuse something that appeared at this path.
    fs.writeFileSync(file.path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    file.remove();
    throw e;
  }
  live.add(file);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const f of [...live]) f.remove();
    });
  }
  return file;
}
