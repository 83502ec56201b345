import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { promisify } from 'util';
import * as zlib from 'zlib';
import * as lockfile from 'proper-lockfile';
import { strataCacheDir } from '../../core/paths';

// llama.cpp source without GitHub: the node-llama-cpp npm package carries the whole llama.cpp
// tree as a git bundle, and npm is the one network we can count on. We pin one version and its
// registry integrity, so the same bytes (and so the same llama.cpp commit) land everywhere.
//
// Cache layout, under strataCacheDir():
//   llama.cpp/npm/node-llama-cpp-<ver>.tgz        the packed tarball (kept: re-cloning is offline)
//   llama.cpp/npm/node-llama-cpp-<ver>.json       source stamp {commit, tag, srcDir}, written last
//   llama.cpp/src-<commit12>/                     git clone of the bundle (renamed in when complete)
//   llama.cpp/build-<commit12>-<backend>[-<t>]/   see llamaBuild.ts

/** The one place the llama.cpp version is chosen. Bump all four fields together. */
export const PINNED_NODE_LLAMA_CPP = Object.freeze({
  version: '3.22.1',
  /** dist.integrity from the npm registry; npm pack output is checked against it. */
  integrity: 'sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==',
  /** HEAD of llama/gitRelease.bundle in that tarball. */
  llamaCommit: 'de3ff815ea7d559ee917f063901b8986f038abc6',
  /** llama/llama.cpp.info.json "tag" in that tarball. */
  tag: 'v0.5.0',
});

export interface LlamaSource {
  srcDir: string;
  /** Full 40-hex commit of the source tree. */
  commit: string;
  tag: string;
  nodeLlamaCppVersion: string;
}

export type InstallPhase = 'check' | 'source' | 'wait' | 'configure' | 'build' | 'verify' | 'done';

export interface InstallProgress {
  phase: InstallPhase;
  message: string;
  /** 0..100 within the build phase; absent where no measure exists. */
  percent?: number;
}

export interface LlamaSourceOptions {
  /** Defaults to strataCacheDir(env). */
  cacheDir?: string;
  /** Defaults to PINNED_NODE_LLAMA_CPP.version; other versions skip the integrity check. */
  nodeLlamaCppVersion?: string;
  /** Use this node-llama-cpp tarball instead of `npm pack` (air-gapped machines). */
  tarballPath?: string;
  onProgress?: (p: InstallProgress) => void;
  signal?: AbortSignal;
  /** Environment for child processes and tool lookup (PATH). Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Lock staleness; a crashed holder's lock is taken over after this long. */
  lockStaleMs?: number;
}

export type InstallErrorCode =
  | 'TOOL_MISSING'
  | 'TOOLCHAIN_MISSING'
  | 'SOURCE_FAILED'
  | 'CONFIGURE_FAILED'
  | 'BUILD_FAILED'
  | 'VERIFY_FAILED'
  | 'LOCK_LOST'
  | 'ABORTED'
  | 'BAD_OPTIONS';

/** Every failure a user can meet; `message` is one actionable sentence. */
export class LlamaInstallError extends Error {
  constructor(
    readonly code: InstallErrorCode,
    message: string,
    readonly logPath?: string,
    /** Last lines of the failing tool's output, for display under the message. */
    readonly outputTail?: string,
  ) {
    super(message);
    this.name = 'LlamaInstallError';
  }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers

export function shortCommit(commit: string): string {
  return commit.slice(0, 12);
}

export function llamaCacheRoot(cacheDir: string): string {
  return path.join(cacheDir, 'llama.cpp');
}

export interface SourceLayout {
  root: string;
  npmDir: string;
  tarball: string;
  stamp: string;
  /** proper-lockfile target (the lock itself is `${lockTarget}.lock`). */
  lockTarget: string;
}

export function llamaSourceLayout(cacheDir: string, nodeLlamaCppVersion: string): SourceLayout {
  const root = llamaCacheRoot(cacheDir);
  const npmDir = path.join(root, 'npm');
  const base = `node-llama-cpp-${nodeLlamaCppVersion}`;
  return {
    root,
    npmDir,
    tarball: path.join(npmDir, `${base}.tgz`),
    stamp: path.join(npmDir, `${base}.json`),
    lockTarget: path.join(npmDir, base),
  };
}

/** Short commit keeps build paths well under Windows' MAX_PATH; 12 hex digits do not collide. */
export function llamaSourceDirName(commit: string): string {
  return `src-${shortCommit(commit)}`;
}

export type ToolName = 'cmake' | 'git' | 'npm' | 'c++';

/** The one sentence a user sees when a required tool is not installed. */
export function toolMissingMessage(tool: ToolName, platform: NodeJS.Platform = process.platform): string {
  const hint: Record<ToolName, Partial<Record<NodeJS.Platform, string>> & { default: string }> = {
    cmake: {
      linux: 'Debian/Ubuntu: sudo apt-get install cmake; Fedora: sudo dnf install cmake',
      darwin: 'brew install cmake',
      win32: 'winget install Kitware.CMake',
      default: 'see https://cmake.org/download',
    },
    git: {
      linux: 'Debian/Ubuntu: sudo apt-get install git',
      darwin: 'xcode-select --install',
      win32: 'winget install Git.Git',
      default: 'see https://git-scm.com',
    },
    npm: {
      linux: 'Debian/Ubuntu: sudo apt-get install npm',
      darwin: 'brew install node',
      win32: 'winget install OpenJS.NodeJS',
      default: 'install Node.js, which includes npm',
    },
    'c++': {
      linux: 'Debian/Ubuntu: sudo apt-get install g++; Fedora: sudo dnf install gcc-c++',
      darwin: 'xcode-select --install',
      win32: 'install Visual Studio Build Tools with the "Desktop development with C++" workload',
      default: 'install g++ or clang++',
    },
  };
  const h = hint[tool][platform] ?? hint[tool].default;
  const what = tool === 'c++' ? 'A C++ compiler (c++, g++ or clang++, or $CXX)' : `${tool}`;
  return `${what} was not found on PATH: install it (${h}) and retry.`;
}

export interface TarEntry {
  name: string;
  /** '0' file, '5' directory, '2' symlink, ... (ustar typeflag). */
  type: string;
  mode: number;
  data: Buffer;
}

function tarString(buf: Buffer, start: number, len: number): string {
  const slice = buf.subarray(start, start + len);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul === -1 ? slice.length : nul).toString('utf8');
}

function tarNumber(buf: Buffer, start: number, len: number): number {
  // GNU base-256 for sizes over 8 GiB: high bit of the first byte set.
  if (buf[start]! & 0x80) {
    let n = buf[start]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + buf[start + i]!;
    return n;
  }
  const s = tarString(buf, start, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = parseInt(data.subarray(pos, sp).toString('utf8'), 10);
    if (!(len > 0)) break;
    const record = data.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/**
 * Minimal ustar/pax/GNU reader, enough for npm tarballs. Written here because no tar package
 * is a dependency and `tar` on PATH differs across platforms (bsdtar on Windows and macOS).
 */
export function parseTar(buf: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let pos = 0;
  let paxPath: string | undefined;
  let longName: string | undefined;
  while (pos + 512 <= buf.length) {
    const header = buf.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break;
    const size = tarNumber(header, 124, 12);
    const type = String.fromCharCode(header[156] || 0x30);
    const dataStart = pos + 512;
    const data = buf.subarray(dataStart, dataStart + size);
    pos = dataStart + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      paxPath = parsePax(data).path;
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = tarString(data, 0, data.length);
      continue;
    }
    let name = tarString(header, 0, 100);
    const magic = tarString(header, 257, 6);
    const prefix = magic.startsWith('ustar') ? tarString(header, 345, 155) : '';
    if (prefix) name = `${prefix}/${name}`;
    if (longName !== undefined) name = longName;
    if (paxPath !== undefined) name = paxPath;
    paxPath = undefined;
    longName = undefined;
    entries.push({ name, type: type === '\0' ? '0' : type, mode: tarNumber(header, 100, 8), data });
  }
  return entries;
}

/**
 * Where an entry under `prefix` goes inside destDir, or undefined when it is outside the prefix
 * or would escape destDir (`..`, absolute names).
 */
export function tarEntryTarget(name: string, prefix: string, destDir: string): string | undefined {
  const norm = name.replace(/\\/g, '/').replace(/^\.\//, '');
  if (!norm.startsWith(prefix)) return undefined;
  const rel = norm.slice(prefix.length);
  if (!rel || rel.startsWith('/') || /^[A-Za-z]:/.test(rel)) return undefined;
  if (rel.split('/').some((seg) => seg === '..')) return undefined;
  return path.join(destDir, ...rel.split('/').filter(Boolean));
}

export function sriOf(data: Buffer, algo = 'sha512'): string {
  return `${algo}-${crypto.createHash(algo).update(data).digest('base64')}`;
}

// ---------------------------------------------------------------------------------------------
// Process and PATH helpers (shared with llamaBuild.ts)

/** Finds an executable the way a shell would, using env.PATH (and PATHEXT on Windows). */
export function findOnPath(cmd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const isWin = process.platform === 'win32';
  const exts = isWin ? (env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean) : [''];
  const candidates = (dir: string): string[] =>
    isWin && !path.extname(cmd) ? exts.map((e) => path.join(dir, cmd + e)) : [path.join(dir, cmd)];
  const executable = (p: string): boolean => {
    try {
      const st = fs.statSync(p);
      if (!st.isFile()) return false;
      if (!isWin) fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (cmd.includes('/') || (isWin && cmd.includes('\\'))) return executable(cmd) ? cmd : undefined;
  const pathVar = env.PATH ?? env.Path ?? '';
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue;
    for (const c of candidates(dir)) if (executable(c)) return c;
  }
  return undefined;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called per output line (stdout and stderr interleaved as they arrive). */
  onLine?: (line: string) => void;
  /** Everything the process writes is also appended here. */
  log?: fs.WriteStream;
  timeoutMs?: number;
  /** Windows .cmd shims (npm) need a shell since Node 20's CVE-2024-27980 fix. */
  shell?: boolean;
  /**
   * POSIX: start the child in its own process group, so that cancelling kills the compilers it
   * started too. The price: a terminal's Ctrl-C no longer reaches them, so use it only when
   * someone will cancel through the signal.
   */
  ownGroup?: boolean;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** Last ~40 lines of stdout+stderr. */
  tail: string;
  aborted: boolean;
  timedOut: boolean;
}

const TAIL_LINES = 40;
const STDOUT_LIMIT = 1 << 20;

/** Kills a process and, where it can, everything it started (cmake -> make -> cc1plus). */
function killTree(pid: number, group: boolean): void {
  try {
    if (process.platform === 'win32') {
      spawn('taskkill', ['/pid', String(pid), '/T', '/F'], { stdio: 'ignore', windowsHide: true });
    } else {
      const target = group ? -pid : pid;
      process.kill(target, 'SIGTERM');
      setTimeout(() => {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 3000).unref();
    }
  } catch {
    /* already gone */
  }
}

/** Runs a command; resolves with its exit status, rejects only when it cannot be started. */
export function runProcess(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      resolve({ code: null, signal: null, stdout: '', tail: '', aborted: true, timedOut: false });
      return;
    }
    // With a shell, Windows re-parses the command line: quote what has spaces (npm lives in
    // "C:\Program Files\nodejs").
    const q = (s: string): string => (opts.shell && /[\s&()]/.test(s) ? `"${s}"` : s);
    const child = spawn(q(cmd), args.map(q), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
      shell: opts.shell ?? false,
      detached: !!opts.ownGroup && process.platform !== 'win32',
    });
    let stdout = '';
    const tail: string[] = [];
    let aborted = false;
    let timedOut = false;
    const partial: Record<'out' | 'err', string> = { out: '', err: '' };
    const onData = (which: 'out' | 'err') => (chunk: Buffer) => {
      opts.log?.write(chunk);
      const text = chunk.toString('utf8');
      if (which === 'out' && stdout.length < STDOUT_LIMIT) stdout += text;
      const lines = (partial[which] + text).split(/\r?\n|\r/);
      partial[which] = lines.pop() ?? '';
      for (const line of lines) emit(line);
    };
    const emit = (line: string): void => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      opts.onLine?.(line);
    };
    child.stdout!.on('data', onData('out'));
    child.stderr!.on('data', onData('err'));
    const onAbort = (): void => {
      aborted = true;
      if (child.pid !== undefined) killTree(child.pid, !!opts.ownGroup);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            if (child.pid !== undefined) killTree(child.pid, !!opts.ownGroup);
          }, opts.timeoutMs)
        : undefined;
    child.on('error', (err) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      for (const k of ['out', 'err'] as const) if (partial[k]) emit(partial[k]);
      resolve({ code, signal, stdout, tail: tail.join('\n'), aborted, timedOut });
    });
  });
}

export function abortedError(what: string): LlamaInstallError {
  return new LlamaInstallError('ABORTED', `${what} was cancelled; run it again to resume where it stopped.`);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once if the lock is busy and we start waiting. */
  onWait?: () => void;
  staleMs?: number;
  pollMs?: number;
  /** For messages: "the llama.cpp build", "the llama.cpp source download". */
  what: string;
}

/**
 * Runs fn while holding a cross-process lock on `target` (proper-lockfile: mkdir `${target}.lock`,
 * mtime refreshed while held, taken over when older than staleMs, so a killed holder blocks
 * others for at most staleMs). Waits, without a deadline, while another live process holds it:
 * the holder is doing exactly the work the waiter wants. fn gets a signal that also fires if the
 * lock is lost, so two processes never keep working in the same directory.
 */
export async function withLock<T>(target: string, opts: LockOptions, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const staleMs = opts.staleMs ?? 30_000;
  const lost = new AbortController();
  let release: (() => Promise<void>) | undefined;
  let waited = false;
  await fsp.mkdir(path.dirname(target), { recursive: true });
  for (;;) {
    if (opts.signal?.aborted) throw abortedError(opts.what);
    try {
      release = await lockfile.lock(target, {
        realpath: false,
        stale: staleMs,
        update: Math.max(1000, Math.floor(staleMs / 3)),
        retries: 0,
        onCompromised: (err) => lost.abort(err),
      });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      if (!waited) {
        waited = true;
        opts.onWait?.();
      }
      await sleep(opts.pollMs ?? 500, opts.signal);
    }
  }
  const signal = opts.signal ? AbortSignal.any([opts.signal, lost.signal]) : lost.signal;
  try {
    const result = await fn(signal);
    if (lost.signal.aborted) throw lockLost(opts.what, target);
    return result;
  } catch (err) {
    if (lost.signal.aborted) throw lockLost(opts.what, target);
    throw err;
  } finally {
    await release().catch(() => undefined);
  }
}

function lockLost(what: string, target: string): LlamaInstallError {
  return new LlamaInstallError(
    'LOCK_LOST',
    `${what} lost its lock ${target}.lock (the process was stalled for too long or the lock was removed); run it again.`,
  );
}

/** Writes via a temp file and rename, so a reader never sees half a file. */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, file);
}

// ---------------------------------------------------------------------------------------------
// The source itself

interface SourceStamp {
  schema: 1;
  nodeLlamaCppVersion: string;
  commit: string;
  tag: string;
  srcDirName: string;
}

function existsSync(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * The cached source, if complete, with no network, no child process and no lock: this is the
 * fast path every later build check goes through.
 */
export function readCachedLlamaSource(
  opts: Pick<LlamaSourceOptions, 'cacheDir' | 'nodeLlamaCppVersion' | 'env'> & {
    /** false: answer from the stamp even if the tree was deleted (finding a finished build needs only the commit). */
    requireTree?: boolean;
  } = {},
): LlamaSource | undefined {
  const cacheDir = opts.cacheDir ?? strataCacheDir(opts.env ?? process.env);
  const version = opts.nodeLlamaCppVersion ?? PINNED_NODE_LLAMA_CPP.version;
  const layout = llamaSourceLayout(cacheDir, version);
  let stamp: SourceStamp;
  try {
    stamp = JSON.parse(fs.readFileSync(layout.stamp, 'utf8')) as SourceStamp;
  } catch {
    return undefined;
  }
  if (stamp.schema !== 1 || stamp.nodeLlamaCppVersion !== version || !/^[0-9a-f]{40}$/.test(stamp.commit)) return undefined;
  const srcDir = path.join(layout.root, stamp.srcDirName);
  if (opts.requireTree !== false && (!existsSync(path.join(srcDir, 'CMakeLists.txt')) || !existsSync(path.join(srcDir, '.git')))) {
    return undefined;
  }
  return { srcDir, commit: stamp.commit, tag: stamp.tag, nodeLlamaCppVersion: version };
}

/**
 * Gets the llama.cpp source tree of the pinned node-llama-cpp release into the cache (npm pack,
 * extract package/llama/*, git clone of the bundle). Idempotent and safe to call concurrently.
 */
export async function ensureLlamaSource(opts: LlamaSourceOptions = {}): Promise<LlamaSource> {
  const env = opts.env ?? process.env;
  const cacheDir = opts.cacheDir ?? strataCacheDir(env);
  const version = opts.nodeLlamaCppVersion ?? PINNED_NODE_LLAMA_CPP.version;
  const cached = readCachedLlamaSource({ cacheDir, nodeLlamaCppVersion: version });
  if (cached) return cached;

  const layout = llamaSourceLayout(cacheDir, version);
  const progress = (message: string, phase: InstallPhase = 'source'): void => opts.onProgress?.({ phase, message });
  const what = 'Getting the llama.cpp source';
  return withLock(
    layout.lockTarget,
    {
      what,
      signal: opts.signal,
      staleMs: opts.lockStaleMs,
      onWait: () => progress('Waiting for another Strata process that is fetching the llama.cpp source', 'wait'),
    },
    async (signal) => {
      const again = readCachedLlamaSource({ cacheDir, nodeLlamaCppVersion: version });
      if (again) return again;
      const git = findOnPath('git', env);
      if (!git) throw new LlamaInstallError('TOOL_MISSING', toolMissingMessage('git'));
      await fsp.mkdir(layout.npmDir, { recursive: true });

      await cleanupTemps(layout, version);
      const tgz = await obtainTarball(layout, version, opts, env, signal, progress);
      progress(`Unpacking llama.cpp from node-llama-cpp ${version}`);
      const work = path.join(layout.root, `${tempPrefix(version)}${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
      try {
        const llamaDir = path.join(work, 'llama');
        const entries = parseTar(await promisify(zlib.gunzip)(tgz));
        let wrote = 0;
        for (const e of entries) {
          const target = tarEntryTarget(e.name, 'package/llama/', llamaDir);
          if (!target || (e.type !== '0' && e.type !== '7')) continue;
          await fsp.mkdir(path.dirname(target), { recursive: true });
          await fsp.writeFile(target, e.data);
          wrote++;
        }
        const bundle = path.join(llamaDir, 'gitRelease.bundle');
        if (!wrote || !existsSync(bundle)) {
          throw new LlamaInstallError(
            'SOURCE_FAILED',
            `node-llama-cpp ${version} has no llama/gitRelease.bundle; pin a version that ships the llama.cpp bundle.`,
          );
        }
        let tag = '';
        try {
          tag = (JSON.parse(await fsp.readFile(path.join(llamaDir, 'llama.cpp.info.json'), 'utf8')) as { tag?: string }).tag ?? '';
        } catch {
          /* tag is informational */
        }

        progress(`Cloning llama.cpp ${tag} from the git bundle`);
        const clone = path.join(work, 'src');
        await gitOrThrow(
          git,
          ['-c', 'advice.detachedHead=false', 'clone', '--quiet', '-c', 'core.autocrlf=false', bundle, clone],
          { env, signal },
          'git clone of the llama.cpp bundle',
        );
        const rev = await gitOrThrow(git, ['rev-parse', 'HEAD'], { cwd: clone, env, signal }, 'git rev-parse');
        const commit = rev.trim();
        if (!/^[0-9a-f]{40}$/.test(commit)) {
          throw new LlamaInstallError('SOURCE_FAILED', `git rev-parse gave "${commit}" for the llama.cpp clone; delete ${layout.root} and retry.`);
        }
        const srcDirName = llamaSourceDirName(commit);
        const srcDir = path.join(layout.root, srcDirName);
        // A leftover here has no stamp, so nothing vouches for it: replace it.
        await fsp.rm(srcDir, { recursive: true, force: true });
        await fsp.rename(clone, srcDir);
        const stamp: SourceStamp = { schema: 1, nodeLlamaCppVersion: version, commit, tag, srcDirName };
        await writeFileAtomic(layout.stamp, JSON.stringify(stamp, null, 2) + '\n');
        progress(`llama.cpp source ready at ${srcDir}`);
        return { srcDir, commit, tag, nodeLlamaCppVersion: version };
      } finally {
        await fsp.rm(work, { recursive: true, force: true }).catch(() => undefined);
      }
    },
  );
}

function tempPrefix(version: string): string {
  return `.tmp-src-${version}-`;
}

function packPrefix(version: string): string {
  return `.pack-${version}-`;
}

async function cleanupTemps(layout: SourceLayout, version: string): Promise<void> {
  // Called under this version's source lock, so its temp dirs are from interrupted runs; other
  // versions' (under other locks) may be live and are left alone.
  for (const [dir, prefix] of [
    [layout.root, tempPrefix(version)],
    [layout.npmDir, packPrefix(version)],
  ] as const) {
    for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(prefix)) await fsp.rm(path.join(dir, name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

async function gitOrThrow(git: string, args: string[], o: RunOptions, what: string): Promise<string> {
  const r = await runProcess(git, args, o);
  if (r.aborted) throw abortedError('Getting the llama.cpp source');
  if (r.code !== 0) {
    throw new LlamaInstallError('SOURCE_FAILED', `${what} failed (exit ${r.code}): ${lastLine(r.tail)}; delete the partial cache and retry.`, undefined, r.tail);
  }
  return r.stdout;
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? 'no output';
}

async function obtainTarball(
  layout: SourceLayout,
  version: string,
  opts: LlamaSourceOptions,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  progress: (m: string) => void,
): Promise<Buffer> {
  const expected = version === PINNED_NODE_LLAMA_CPP.version ? PINNED_NODE_LLAMA_CPP.integrity : undefined;
  const check = (data: Buffer, from: string): Buffer => {
    if (expected && sriOf(data) !== expected) {
      throw new LlamaInstallError(
        'SOURCE_FAILED',
        `${from} does not match the pinned integrity of node-llama-cpp ${version}; it was altered or is another version, so get the genuine tarball and retry.`,
      );
    }
    return data;
  };
  if (opts.tarballPath) return check(await fsp.readFile(opts.tarballPath), opts.tarballPath);

  const existing = await fsp.readFile(layout.tarball).catch(() => undefined);
  if (existing) {
    if (!expected || sriOf(existing) === expected) return existing;
    await fsp.rm(layout.tarball, { force: true });
  }

  const npm = findOnPath('npm', env);
  if (!npm) throw new LlamaInstallError('TOOL_MISSING', toolMissingMessage('npm'));
  progress(`Downloading node-llama-cpp ${version} (about 35 MB) with npm pack`);
  // A private temp dir: npm pack names its output itself, and a half-written file must never
  // sit at the final name.
  const dest = await fsp.mkdtemp(path.join(layout.npmDir, packPrefix(version)));
  try {
    const r = await runProcess(
      npm,
      ['pack', `node-llama-cpp@${version}`, '--ignore-scripts', '--json', '--pack-destination', dest],
      { cwd: dest, env, signal, shell: process.platform === 'win32' },
    );
    if (r.aborted) throw abortedError('Getting the llama.cpp source');
    const file = (await fsp.readdir(dest)).find((f) => f.endsWith('.tgz'));
    if (r.code !== 0 || !file) {
      throw new LlamaInstallError(
        'SOURCE_FAILED',
        `npm pack node-llama-cpp@${version} failed (${lastLine(r.tail)}): check that the npm registry is reachable (npm config get registry) and retry.`,
        undefined,
        r.tail,
      );
    }
    const data = check(await fsp.readFile(path.join(dest, file)), `The npm pack output ${file}`);
    await fsp.rename(path.join(dest, file), layout.tarball);
    return data;
  } finally {
    await fsp.rm(dest, { recursive: true, force: true }).catch(() => undefined);
  }
}
