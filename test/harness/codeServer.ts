import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import * as lockfile from 'proper-lockfile';
import { strataCacheDir } from '../../src/core/paths';
import { pickFreePort } from '../../src/daemon/ports';

// A real VS Code (code-server: VS Code's server + web workbench, from npm) for browser E2E tests
// and extension-host tests. code-server is a test tool, not a dependency of the repo: it is
// installed on demand into <strataCacheDir()>/code-server/<version>/ (~300 MB, ~45 s cold on
// 2 cores, native modules built with node-gyp against the local Node headers).
//
// npm 11 and install scripts: a project-scoped `npm install` refuses `--allow-scripts` (and
// `npm_config_allow_scripts`) with EALLOWSCRIPTS, and any allow-scripts value that *is* accepted
// (.npmrc) is exported to lifecycle scripts as npm_config_allow_scripts, which then makes the
// nested `npm install` that code-server's postinstall runs in lib/vscode fail with the same error.
// So the install runs in two phases, each with an explicit `allowScripts` in the package.json of
// the project being installed (that layer is not exported to child processes):
//   1. `npm install` in a private project whose package.json pins code-server and allows argon2
//      (built from source; its prebuilt download from GitHub fails offline) but denies
//      code-server's postinstall;
//   2. add `allowScripts` to code-server's lib/vscode/package.json and lib/vscode/extensions/
//      package.json (node-pty, spdlog, kerberos, ... allowed; @vscode/ripgrep denied when a system
//      `rg` exists, because its postinstall downloads from GitHub), allow code-server in the
//      private project, and `npm rebuild code-server`, which runs code-server's postinstall.sh.
//      That needs npm_config_unsafe_perm=true when root, and npm_config_yes=true because node-pty's
//      post-install runs `npx node-gyp`.
//   3. copy the system `rg` to @vscode/ripgrep/bin/rg (what its postinstall would have downloaded).
// The install happens in a temp folder next to the final one and is renamed into place when it
// works, under a lock, so two test runs never see or build half an install.

export const CODE_SERVER_VERSION = process.env.STRATA_CODE_SERVER_VERSION || '4.100.3';

/** Packages below code-server/lib/vscode whose install scripts must run (non-Linux ones are skipped by npm). */
const VSCODE_NATIVE_PACKAGES = [
  '@parcel/watcher',
  '@vscode/deviceid',
  '@vscode/spdlog',
  '@vscode/windows-ca-certs',
  '@vscode/windows-process-tree',
  '@vscode/windows-registry',
  'kerberos',
  'native-watchdog',
  'node-pty',
];

export interface CodeServerInstall {
  /** code-server's entry script (`out/node/entry.js`, the package's `bin`); run it with `node`. */
  binPath: string;
  /** code-server version, e.g. 4.100.3. */
  version: string;
  /** VS Code version inside it, e.g. 1.100.3. */
  vscodeVersion: string;
  /** The Node binary that runs it (code-server 4.100.x needs Node 20). */
  nodePath: string;
  /** Install root: <strataCacheDir()>/code-server/<version>. */
  dir: string;
}

function installDir(version: string): string {
  return path.join(strataCacheDir(), 'code-server', version);
}

function entryOf(dir: string): string {
  return path.join(dir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
}

const MARKER = '.strata-install.json';

function readInstall(dir: string, version: string): CodeServerInstall | undefined {
  try {
    const marker = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as { version: string; vscodeVersion: string };
    if (marker.version !== version || !fs.existsSync(entryOf(dir))) return undefined;
    return { binPath: entryOf(dir), version, vscodeVersion: marker.vscodeVersion, nodePath: codeServerNode(), dir };
  } catch {
    return undefined;
  }
}

function codeServerNode(): string {
  return process.env.STRATA_CODE_SERVER_NODE || process.execPath;
}

function checkNode(version: string): void {
  if (process.env.STRATA_CODE_SERVER_NODE) return;
  const major = Number(process.versions.node.split('.')[0]);
  if (version.startsWith('4.100.') && major !== 20) {
    throw new Error(
      `code-server ${version} needs Node 20 but this is Node ${process.versions.node}: run the tests with Node 20, or set STRATA_CODE_SERVER_NODE to a Node 20 binary.`,
    );
  }
}

function findOnPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/**
 * node-gyp builds code-server's native modules against the headers of the Node running npm, which
 * it downloads from nodejs.org unless told where they are (Node builds without
 * use_prefix_to_find_headers, e.g. NodeSource's and the official tarballs). Where that Node's
 * prefix has them (include/node/node_version.h of the same version, as installs from those
 * sources do), point node-gyp there: the install then needs only the npm registry, as CI's
 * machine and many firewalled ones reach nothing else.
 */
export function localNodeHeaders(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.npm_config_nodedir) return {};
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  try {
    const h = fs.readFileSync(path.join(prefix, 'include', 'node', 'node_version.h'), 'utf8');
    const part = (name: string): string | undefined => new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(h)?.[1];
    return `v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` === process.version ? { npm_config_nodedir: prefix } : {};
  } catch {
    return {};
  }
}

function patchJson(file: string, patch: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  patch(j);
  fs.writeFileSync(file, JSON.stringify(j, null, 2) + '\n');
}

/** Runs npm without blocking the event loop (the install lock's heartbeat must keep beating). */
async function runNpm(args: string[], cwd: string, env: NodeJS.ProcessEnv, logFile: string): Promise<void> {
  fs.appendFileSync(logFile, `\n$ npm ${args.join(' ')}   (in ${cwd})\n`);
  const fd = fs.openSync(logFile, 'a');
  try {
    const r = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const child = spawn('npm', args, { cwd, env, stdio: ['ignore', fd, fd] });
      const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`Cannot run npm (${e.message}): is npm on PATH?`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
    if (r.code !== 0) {
      const tail = fs.readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n');
      throw new Error(`npm ${args.join(' ')} failed (exit code ${r.code}, signal ${r.signal}) in ${cwd}; full log: ${logFile}\n${tail}`);
    }
  } finally {
    fs.closeSync(fd);
  }
}

async function doInstall(version: string, tmp: string, log: (line: string) => void): Promise<string> {
  const logFile = path.join(tmp, 'install.log');
  const npmTmp = path.join(tmp, '.npm-tmp');
  fs.mkdirSync(npmTmp, { recursive: true });
  const rg = findOnPath('rg');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TMPDIR: npmTmp,
    // code-server's postinstall.sh refuses to run as root without it (npm 11 no longer knows the
    // option, but the script only reads the environment variable).
    npm_config_unsafe_perm: 'true',
    // node-pty's post-install runs `npx node-gyp`, which must not prompt.
    npm_config_yes: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    ...localNodeHeaders(),
  };
  // The private project that holds code-server. Phase 1: everything but code-server's postinstall.
  fs.writeFileSync(
    path.join(tmp, 'package.json'),
    JSON.stringify(
      {
        name: 'strata-code-server-cache',
        private: true,
        description: 'code-server for Strata Coder tests; written by test/harness/codeServer.ts',
        dependencies: { 'code-server': version },
        allowScripts: { argon2: true, 'code-server': false },
      },
      null,
      2,
    ),
  );
  log(`installing code-server ${version} into ${tmp} (npm, phase 1 of 2)`);
  await runNpm(['install', '--omit=dev', '--no-audit', '--no-fund'], tmp, env, logFile);

  // Phase 2: code-server's postinstall (npm install in lib/vscode and lib/vscode/extensions).
  const cs = path.join(tmp, 'node_modules', 'code-server');
  const vscodeDir = path.join(cs, 'lib', 'vscode');
  const allow: Record<string, boolean> = {};
  for (const p of VSCODE_NATIVE_PACKAGES) allow[p] = true;
  allow['@vscode/ripgrep'] = !rg; // without a system rg, let it try its GitHub download
  patchJson(path.join(vscodeDir, 'package.json'), (j) => {
    j.allowScripts = allow;
  });
  patchJson(path.join(vscodeDir, 'extensions', 'package.json'), (j) => {
    j.allowScripts = { '@parcel/watcher': true, esbuild: true };
  });
  patchJson(path.join(tmp, 'package.json'), (j) => {
    j.allowScripts = { argon2: true, 'code-server': true };
  });
  log(`building code-server's native modules (npm rebuild code-server, phase 2 of 2)`);
  await runNpm(['rebuild', 'code-server'], tmp, env, logFile);

  if (rg) {
    const binDir = path.join(vscodeDir, 'node_modules', '@vscode', 'ripgrep', 'bin');
    fs.mkdirSync(binDir, { recursive: true });
    fs.copyFileSync(rg, path.join(binDir, 'rg'));
    fs.chmodSync(path.join(binDir, 'rg'), 0o755);
  }

  // Check the pieces the server needs at run time are there before calling it installed.
  const mustExist = [
    entryOf(tmp),
    path.join(vscodeDir, 'out', 'server-main.js'),
    path.join(vscodeDir, 'node_modules', 'node-pty', 'build', 'Release', 'pty.node'),
    path.join(vscodeDir, 'node_modules', '@vscode', 'spdlog', 'build', 'Release', 'spdlog.node'),
    path.join(vscodeDir, 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg'),
    path.join(vscodeDir, 'node_modules.asar'),
  ];
  for (const f of mustExist) {
    if (!fs.existsSync(f)) throw new Error(`code-server install is incomplete: ${f} is missing; see ${logFile}`);
  }
  const v = spawnSync(codeServerNode(), [entryOf(tmp), '--version'], { encoding: 'utf8', timeout: 60_000 });
  // On a first run code-server prints "Wrote default config file ..." before the version line.
  if (v.status !== 0 || !v.stdout.split('\n').some((l) => l.startsWith(version))) {
    throw new Error(`code-server ${version} does not start after install: ${v.stdout}${v.stderr}; see ${logFile}`);
  }
  const vscodeVersion = (JSON.parse(fs.readFileSync(path.join(vscodeDir, 'package.json'), 'utf8')) as { version: string }).version;
  fs.rmSync(npmTmp, { recursive: true, force: true });
  fs.writeFileSync(path.join(tmp, MARKER), JSON.stringify({ version, vscodeVersion, node: process.version, installedAt: new Date().toISOString() }, null, 2));
  return vscodeVersion;
}

/**
 * Installs code-server into the Strata cache if it is not there yet; idempotent and safe to
 * call from several processes at once (a lock plus install-into-temp-then-rename).
 */
export async function ensureCodeServer(opts: { log?: (line: string) => void } = {}): Promise<CodeServerInstall> {
  const version = CODE_SERVER_VERSION;
  checkNode(version);
  const dir = installDir(version);
  const ready = readInstall(dir, version);
  if (ready) return ready;

  const log = opts.log ?? ((line: string) => process.stderr.write(`[code-server] ${line}\n`));
  const parent = path.dirname(dir);
  fs.mkdirSync(parent, { recursive: true });
  const release = await lockfile.lock(parent, {
    lockfilePath: `${dir}.lock`,
    stale: 60_000,
    update: 10_000,
    // Another process may be installing (~1 min); wait up to 20 min for it.
    retries: { retries: 1200, factor: 1, minTimeout: 1000, maxTimeout: 1000 },
    // Default: throw from a timer. The install copes with a lost lock (see the marker check
    // before the rename), so say it and go on.
    onCompromised: (err) => log(`warning: the install lock ${dir}.lock was lost (${err.message}); continuing`),
  });
  try {
    const again = readInstall(dir, version);
    if (again) return again;
    const started = Date.now();
    const tmp = fs.mkdtempSync(path.join(parent, `.tmp-${version}-`));
    try {
      const vscodeVersion = await doInstall(version, tmp, log);
      fs.chmodSync(tmp, 0o755); // mkdtemp made it 0700
      if (readInstall(dir, version)) {
        // Someone finished first (possible only if our lock was taken over as stale); theirs may
        // be in use, keep it.
        fs.rmSync(tmp, { recursive: true, force: true });
      } else {
        fs.rmSync(dir, { recursive: true, force: true }); // a broken earlier install without a marker
        fs.renameSync(tmp, dir);
        log(`code-server ${version} (VS Code ${vscodeVersion}) installed in ${((Date.now() - started) / 1000).toFixed(1)} s: ${dir}`);
      }
    } catch (e) {
      if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    const done = readInstall(dir, version);
    if (!done) throw new Error(`code-server install in ${dir} has no ${MARKER} after a successful install`);
    return done;
  } finally {
    await release().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Running it

export interface StartCodeServerOptions {
  /** Folder the window opens. Created if missing. */
  workspaceDir: string;
  /**
   * Extension folders (each with a package.json; `main` must already be built) to install by
   * symlinking them into the extensions dir as `<publisher>.<name>-<version>`.
   */
  extensionDevelopmentPaths?: string[];
  /** Extra environment for code-server and therefore for its extension host. */
  env?: Record<string, string>;
  /** User settings, merged over the test defaults below. */
  settings?: Record<string, unknown>;
  /** User keybindings (keybindings.json), e.g. for commands VS Code binds to no key. */
  keybindings?: Array<{ key: string; command: string; when?: string }>;
  /**
   * Settings of the machine the server runs on (`<user-data-dir>/Machine/settings.json`), merged
   * over TEST_MACHINE_SETTINGS: in a remote window such as code-server's, machine-scoped settings
   * are read only from there, never from the user's settings.
   */
  machineSettings?: Record<string, unknown>;
  /** Lines of progress; default: none. */
  log?: (line: string) => void;
  /** How long to wait for the server to answer /healthz. Default 60 s. */
  startTimeoutMs?: number;
  /** Keep VS Code's workspace trust on: the folder opens untrusted, in Restricted Mode (default off). */
  workspaceTrust?: boolean;
}

export interface RunningCodeServer {
  /** e.g. http://127.0.0.1:41234/ */
  url: string;
  port: number;
  userDataDir: string;
  extensionsDir: string;
  workspaceDir: string;
  pid: number;
  /** Settles when the code-server process exits (by stop() or on its own). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything code-server printed so far (stdout and stderr, interleaved). */
  logText(): string;
  /** The VS Code server's own log files (extension host, remote agent, ...) by relative path, for failure reports. */
  vscodeLogs(): Record<string, string>;
  /** Kills the whole process group (server, extension host, pty host) and removes the temp dirs. Idempotent. */
  stop(): Promise<void>;
}

/** Settings that keep a test window quiet, offline and deterministic. */
export const TEST_SETTINGS: Record<string, unknown> = {
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.settings.enableNaturalLanguageSearch': false,
  'security.workspace.trust.enabled': false,
  'security.workspace.trust.startupPrompt': 'never',
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'chat.commandCenter.enabled': false,
  'chat.disableAIFeatures': true,
  'git.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
  'editor.accessibilitySupport': 'off',
  'editor.inlineSuggest.enabled': true,
  'files.autoSave': 'off',
  'files.simpleDialog.enable': true,
  'terminal.integrated.enablePersistentSessions': false,
  'window.restoreWindows': 'none',
};

/**
 * Machine-scoped settings that keep a test window quiet. `openOnInstall` is machine-scoped: set in
 * the user's settings it is ignored in a remote window, and Strata's walkthrough would open.
 */
export const TEST_MACHINE_SETTINGS: Record<string, unknown> = {
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
};

function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/**
 * Processes started here (process group id -> temp root) that must not outlive this Node
 * process, even if a test forgets stop() or mocha exits early.
 */
const liveGroups = new Map<number, string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const [pgid, root] of liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* gone */
      }
      if (!process.env.STRATA_KEEP_TEST_DIRS) {
        try {
          fs.rmSync(root, { recursive: true, force: true });
        } catch {
          /* best effort while exiting */
        }
      }
    }
    liveGroups.clear();
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig);
    });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

function symlinkExtension(extDir: string, extensionsDir: string): string {
  const pkgFile = path.join(extDir, 'package.json');
  let pkg: { publisher?: string; name?: string; version?: string; main?: string };
  try {
    pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as typeof pkg;
  } catch (e) {
    throw new Error(`Cannot read ${pkgFile} (${(e as Error).message}): extensionDevelopmentPaths must name extension folders.`);
  }
  if (!pkg.publisher || !pkg.name || !pkg.version) throw new Error(`${pkgFile} lacks publisher, name or version.`);
  if (pkg.main) {
    const main = path.resolve(extDir, pkg.main);
    if (!fs.existsSync(main) && !fs.existsSync(`${main}.js`)) {
      throw new Error(`The extension in ${extDir} is not built (${main} is missing): run "npm run build" first.`);
    }
  }
  const link = path.join(extensionsDir, `${pkg.publisher}.${pkg.name}-${pkg.version}`);
  fs.symlinkSync(path.resolve(extDir), link, 'dir');
  return `${pkg.publisher}.${pkg.name}`;
}

/**
 * Starts code-server on a free loopback port with a fresh user-data dir and extensions dir (in a
 * temp folder removed by stop()). Resolves once /healthz answers.
 */
export async function startCodeServer(opts: StartCodeServerOptions): Promise<RunningCodeServer> {
  const install = await ensureCodeServer({ log: opts.log });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-code-server-'));
  const userDataDir = path.join(root, 'user-data');
  const extensionsDir = path.join(root, 'extensions');
  const configFile = path.join(root, 'config.yaml');
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.mkdirSync(extensionsDir, { recursive: true });
  fs.mkdirSync(opts.workspaceDir, { recursive: true });
  // Without --config code-server writes ~/.config/code-server/config.yaml; keep the user's home untouched.
  fs.writeFileSync(configFile, 'auth: none\ncert: false\n');
  fs.writeFileSync(
    path.join(userDataDir, 'User', 'settings.json'),
    JSON.stringify({ ...TEST_SETTINGS, ...(opts.workspaceTrust ? { 'security.workspace.trust.enabled': true } : {}), ...(opts.settings ?? {}) }, null, 2),
  );
  if (opts.keybindings) fs.writeFileSync(path.join(userDataDir, 'User', 'keybindings.json'), JSON.stringify(opts.keybindings, null, 2));
  fs.mkdirSync(path.join(userDataDir, 'Machine'), { recursive: true });
  fs.writeFileSync(path.join(userDataDir, 'Machine', 'settings.json'), JSON.stringify({ ...TEST_MACHINE_SETTINGS, ...(opts.machineSettings ?? {}) }, null, 2));
  for (const ext of opts.extensionDevelopmentPaths ?? []) symlinkExtension(ext, extensionsDir);

  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await pickFreePort(); // a tiny race remains until code-server binds it: the loop retries
    try {
      return await launch(install, root, port, userDataDir, extensionsDir, configFile, opts);
    } catch (e) {
      lastError = e as Error;
      if (!/EADDRINUSE/.test(lastError.message)) break;
    }
  }
  if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(root, { recursive: true, force: true });
  throw lastError ?? new Error('code-server did not start');
}

async function launch(
  install: CodeServerInstall,
  root: string,
  port: number,
  userDataDir: string,
  extensionsDir: string,
  configFile: string,
  opts: StartCodeServerOptions,
): Promise<RunningCodeServer> {
  const args = [
    install.binPath,
    '--config',
    configFile,
    '--auth',
    'none',
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    ...(opts.workspaceTrust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    '--ignore-last-opened',
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
    opts.workspaceDir,
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.env ?? {}) };
  // Keep the server and its extension host off any inherited debugger/loader flags (tsx, mocha).
  delete env.NODE_OPTIONS;
  delete env.ELECTRON_RUN_AS_NODE;
  delete env.VSCODE_IPC_HOOK_CLI;
  const child = spawn(install.nodePath, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  installExitHook();
  if (child.pid !== undefined) liveGroups.set(child.pid, root);
  const chunks: string[] = [];
  let size = 0;
  const collect = (d: Buffer): void => {
    const s = d.toString('utf8');
    size += s.length;
    chunks.push(s);
    // Keep the tail only, at most ~4 MB.
    while (size > 4_000_000 && chunks.length > 1) size -= chunks.shift()!.length;
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      // The group stays in liveGroups until stop(): the extension host may outlive the server.
      resolve(exited);
    }),
  );
  const logText = (): string => chunks.join('');

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      killGroup(child, 'SIGTERM');
      const t = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
      await exitPromise;
      clearTimeout(t);
    }
    // The extension host and pty host are in the same process group; make sure nothing lingers.
    killGroup(child, 'SIGKILL');
    if (child.pid !== undefined) liveGroups.delete(child.pid);
    if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(root, { recursive: true, force: true });
  };

  const vscodeLogs = (): Record<string, string> => {
    const out: Record<string, string> = {};
    const logsDir = path.join(userDataDir, 'logs');
    const walk = (dir: string): void => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() && e.name.endsWith('.log')) {
          try {
            out[path.relative(logsDir, p)] = fs.readFileSync(p, 'utf8');
          } catch {
            /* rotated away */
          }
        }
      }
    };
    walk(logsDir);
    return out;
  };

  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  try {
    for (;;) {
      if (exited) {
        throw new Error(`code-server exited (code ${exited.code}, signal ${exited.signal}) before it answered on ${url}:\n${logText().slice(-4000)}`);
      }
      if ((await httpStatus(`${url}healthz`)) === 200) break;
      if (Date.now() > deadline) {
        throw new Error(`code-server did not answer ${url}healthz within ${opts.startTimeoutMs ?? 60_000} ms:\n${logText().slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  } catch (e) {
    // Only the process here: startCodeServer() may retry with the same dirs, and removes them itself.
    if (!exited) {
      killGroup(child, 'SIGKILL');
      await exitPromise;
    }
    killGroup(child, 'SIGKILL');
    if (child.pid !== undefined) liveGroups.delete(child.pid);
    throw e;
  }
  opts.log?.(`code-server ${install.version} listening on ${url} (pid ${child.pid})`);
  return { url, port, userDataDir, extensionsDir, workspaceDir: opts.workspaceDir, pid: child.pid!, exited: exitPromise, logText, vscodeLogs, stop };
}
