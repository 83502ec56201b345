import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findOnPath, runProcess } from './runProcess';

// Finding a llama-server to run, in the order a user expects:
//   1. the `strata.server.path` setting (explicit: if it is wrong, say so; never fall through);
//   2. Strata's managed installs (builds from llamaBuild, release downloads), best first;
//   3. PATH;
//   4. well-known install locations (Homebrew, /usr/local, ~/llama.cpp/build/bin, winget).
// And what a found binary is: `--version` and `--list-devices`, parsed.
// No `vscode` import: the extension, scripts and tests share this.

export type ServerSourceKind = 'setting' | 'managed' | 'path' | 'well-known';

export interface ServerCandidate {
  path: string;
  kind: ServerSourceKind;
  /** For managed installs: the InstalledBuild id (see backends.ts). */
  buildId?: string;
  /** llama.cpp backend when known from the install (cpu, vulkan, hip, cuda, ...). */
  backend?: string;
}

export interface SearchedPath {
  path: string;
  kind: ServerSourceKind;
  /** Why it was not taken; absent for the one that was. */
  problem?: 'missing' | 'not-a-file' | 'not-executable';
}

export interface FindResult {
  found?: ServerCandidate;
  searched: SearchedPath[];
  /** One actionable sentence when nothing usable was found (or the setting is wrong). */
  problem?: { code: 'setting-invalid' | 'not-found' | 'not-executable'; message: string };
}

export interface FindOptions {
  /** `strata.server.path`; empty or undefined: not set. */
  settingPath?: string;
  /** Managed installs, best first (listInstalledBuilds + preferredBuildOrder). */
  managed?: { id: string; serverPath: string; backend?: string }[];
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  homeDir?: string;
}

export function exeName(base: string, platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? `${base}.exe` : base;
}

/** Well-known places a user's own llama-server may live, most specific first. */
export function wellKnownServerPaths(platform: NodeJS.Platform = process.platform, home = os.homedir(), env: NodeJS.ProcessEnv = process.env): string[] {
  const exe = exeName('llama-server', platform);
  const j = platform === 'win32' ? path.win32.join : path.posix.join;
  const inHome = [
    j(home, 'llama.cpp', 'build', 'bin', exe),
    j(home, 'llama.cpp', 'build', 'bin', 'Release', exe),
    j(home, 'src', 'llama.cpp', 'build', 'bin', exe),
  ];
  if (platform === 'win32') {
    const local = env.LOCALAPPDATA ?? j(home, 'AppData', 'Local');
    return [
      ...inHome,
      j(local, 'Microsoft', 'WinGet', 'Links', exe),
      j(local, 'Programs', 'llama.cpp', exe),
      j(env.ProgramFiles ?? 'C:\\Program Files', 'llama.cpp', exe),
    ];
  }
  const unix = ['/usr/local/bin/llama-server', '/usr/bin/llama-server', j(home, '.local', 'bin', 'llama-server'), ...inHome];
  if (platform === 'darwin')
    return ['/opt/homebrew/bin/llama-server', '/opt/homebrew/opt/llama.cpp/bin/llama-server', '/usr/local/opt/llama.cpp/bin/llama-server', ...unix];
  return [...unix, '/home/linuxbrew/.linuxbrew/bin/llama-server', '/opt/llama.cpp/bin/llama-server'];
}

/** missing | not-a-file | not-executable | undefined (usable). */
export function checkExecutable(p: string, platform: NodeJS.Platform = process.platform): SearchedPath['problem'] {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return 'missing';
  }
  if (!st.isFile()) return 'not-a-file';
  if (platform === 'win32') return undefined;
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return undefined;
  } catch {
    return 'not-executable';
  }
}

export function expandHome(p: string, home = os.homedir()): string {
  if (p === '~') return home;
  if (p.startsWith('~/') || p.startsWith('~\\')) return path.join(home, p.slice(2));
  return p;
}

export function findLlamaServer(opts: FindOptions = {}): FindResult {
  const platform = opts.platform ?? process.platform;
  const env = opts.env ?? process.env;
  const home = opts.homeDir ?? os.homedir();
  const searched: SearchedPath[] = [];
  const setting = opts.settingPath?.trim();
  if (setting) {
    let p = path.resolve(expandHome(setting, home));
    // A folder is a common mistake: accept the binary inside it.
    try {
      if (fs.statSync(p).isDirectory()) p = path.join(p, exeName('llama-server', platform));
    } catch {
      /* checked below */
    }
    const problem = checkExecutable(p, platform);
    searched.push({ path: p, kind: 'setting', problem });
    if (!problem) return { found: { path: p, kind: 'setting' }, searched };
    const message =
      problem === 'not-executable'
        ? `"strata.server.path" points to ${p}, which is not executable: run "chmod +x ${p}", or clear the setting to let Strata find or install llama-server.`
        : problem === 'not-a-file'
          ? `"strata.server.path" points to ${p}, which is not a file: set it to the llama-server executable, or clear it to let Strata find or install one.`
          : `"strata.server.path" points to ${p}, which does not exist: fix the setting, or clear it to let Strata find or install llama-server.`;
    return { searched, problem: { code: problem === 'not-executable' ? 'not-executable' : 'setting-invalid', message } };
  }
  const tryPath = (p: string, kind: ServerSourceKind, extra: Partial<ServerCandidate> = {}): ServerCandidate | undefined => {
    if (searched.some((s) => s.path === p)) return undefined;
    const problem = checkExecutable(p, platform);
    searched.push({ path: p, kind, problem });
    return problem ? undefined : { path: p, kind, ...extra };
  };
  for (const m of opts.managed ?? []) {
    const c = tryPath(m.serverPath, 'managed', { buildId: m.id, backend: m.backend });
    if (c) return { found: c, searched };
  }
  const onPath = findOnPath(exeName('llama-server', platform), env);
  if (onPath) {
    const c = tryPath(onPath, 'path');
    if (c) return { found: c, searched };
  }
  for (const p of wellKnownServerPaths(platform, home, env)) {
    const c = tryPath(p, 'well-known');
    if (c) return { found: c, searched };
  }
  const notExec = searched.find((s) => s.problem === 'not-executable');
  if (notExec) {
    return {
      searched,
      problem: {
        code: 'not-executable',
        message: `Found ${notExec.path} but it is not executable: run "chmod +x ${notExec.path}", or run "Strata: Build llama-server for This Machine" or "Strata: Download llama-server".`,
      },
    };
  }
  return {
    searched,
    problem: {
      code: 'not-found',
      message:
        'No llama-server found (not in Strata\'s installs, on PATH or in the usual places): run "Strata: Build llama-server for This Machine" or "Strata: Download llama-server", or set "strata.server.path".',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// What a binary is

export interface LlamaDevice {
  /** e.g. "Vulkan0", "CUDA0", "ROCm0", "Metal". */
  name: string;
  /** The backend part of the name: "Vulkan", "CUDA", "ROCm", "Metal", "RPC". */
  backend: string;
  description: string;
  totalMiB?: number;
  freeMiB?: number;
}

export interface LlamaServerInfo {
  path: string;
  /** First line of `--version`, e.g. "version: 0.5.0-dev (build 1, commit de3ff81)". */
  version?: string;
  build?: number;
  commit?: string;
  /** "built with GNU 12.2.0 for Linux x86_64". */
  builtWith?: string;
  devices: LlamaDevice[];
  /** Backends llama.cpp reports devices for, plus CPU (always there). */
  backends: string[];
  /** Set when a probe failed (the binary crashed, timed out, or printed nothing useful). */
  error?: string;
}

/** Parses `llama-server --version` (stderr, after a log line or two). */
export function parseVersionOutput(text: string): Pick<LlamaServerInfo, 'version' | 'build' | 'commit' | 'builtWith'> {
  const lines = text.split(/\r?\n/).map((l) => l.replace(/^.*?\bversion:/, 'version:').trim());
  const version = lines.find((l) => l.startsWith('version:'));
  const builtWith = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.startsWith('built with'));
  const out: Pick<LlamaServerInfo, 'version' | 'build' | 'commit' | 'builtWith'> = {};
  if (version) {
    out.version = version;
    // New: "version: 0.5.0-dev (build 1, commit de3ff81)"; old: "version: 4567 (abc1234)".
    const b = /build (\d+)/.exec(version)?.[1] ?? /^version: (\d+) \(/.exec(version)?.[1];
    if (b) out.build = Number(b);
    const c = /commit ([0-9a-f]{7,40})/.exec(version)?.[1] ?? /^version: \S+ \(([0-9a-f]{7,40})\)/.exec(version)?.[1];
    if (c) out.commit = c;
  }
  if (builtWith) out.builtWith = builtWith;
  return out;
}

/** Parses `--list-devices`: "  Vulkan0: AMD Radeon 8060S (65536 MiB, 60123 MiB free)". */
export function parseListDevices(text: string): LlamaDevice[] {
  const out: LlamaDevice[] = [];
  let inList = false;
  let seen = false;
  for (const raw of text.split(/\r?\n/)) {
    if (/Available devices:/.test(raw)) {
      // One list: the same output can reach us twice (stdout, then the tail of both streams).
      if (seen) break;
      inList = seen = true;
      continue;
    }
    if (!inList) continue;
    const m = /^\s+([A-Za-z][\w.-]*?\d*|RPC\[[^\]]+\]):\s+(.*?)\s*(?:\((\d+) MiB, (\d+) MiB free\))?\s*$/.exec(raw);
    if (!m) continue;
    const name = m[1];
    out.push({
      name,
      backend: name.replace(/\[.*$/, '').replace(/\d+$/, '') || name,
      description: m[2],
      ...(m[3] !== undefined ? { totalMiB: Number(m[3]), freeMiB: Number(m[4]) } : {}),
    });
  }
  return out;
}

const infoCache = new Map<string, { key: string; info: LlamaServerInfo }>();

/**
 * Runs `--version` and `--list-devices` (both exit at once; --list-devices loads the GPU
 * backends, so it can take a second). Cached per path, size and mtime.
 */
export async function inspectLlamaServer(
  bin: string,
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<LlamaServerInfo> {
  let key = '';
  try {
    const st = fs.statSync(bin);
    key = `${st.size}:${st.mtimeMs}`;
  } catch {
    return { path: bin, devices: [], backends: [], error: `${bin} does not exist.` };
  }
  const hit = infoCache.get(bin);
  if (hit && hit.key === key) return hit.info;
  const env = { ...(opts.env ?? process.env) };
  delete env.ELECTRON_RUN_AS_NODE;
  const run = async (args: string[]) => {
    try {
      const r = await runProcess(bin, args, { env, timeoutMs: opts.timeoutMs ?? 20_000, signal: opts.signal });
      return { text: `${r.stdout}\n${r.tail}`, ok: r.code === 0, how: r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}` };
    } catch (e) {
      return { text: '', ok: false, how: (e as Error).message };
    }
  };
  const v = await run(['--version']);
  const d = await run(['--list-devices']);
  const devices = parseListDevices(d.text);
  const info: LlamaServerInfo = {
    path: bin,
    ...parseVersionOutput(v.text),
    devices,
    backends: [...new Set([...devices.map((x) => x.backend), 'CPU'])],
  };
  if (!v.ok || !info.version) info.error = `${path.basename(bin)} --version failed (${v.how}): the binary may be for another system or miss its libraries.`;
  else if (!d.ok) info.error = `${path.basename(bin)} --list-devices failed (${d.how}).`;
  infoCache.set(bin, { key, info });
  return info;
}

export function describeDevices(info: LlamaServerInfo): string {
  const gpus = info.devices.filter((d) => d.backend !== 'RPC');
  if (!gpus.length) return 'CPU only';
  return gpus
    .map(
      (d) =>
        `${d.name} ${d.description}${d.freeMiB !== undefined ? ` (${Math.round(d.freeMiB / 1024)} of ${Math.round((d.totalMiB ?? 0) / 1024)} GiB free)` : ''}`,
    )
    .join('; ');
}
