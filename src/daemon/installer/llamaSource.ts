import * as crypto from 'crypto';
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { promisify } from 'util';
import * as zlib from 'zlib';
import { strataCacheDir } from '../../core/paths';
import { withLock, writeFileAtomic } from './cacheLock';
import { abortedError, LlamaInstallError, toolMissingMessage } from './installError';
import { findOnPath, RunOptions, runProcess } from './runProcess';
import { parseTar, tarEntryTarget } from './tarReader';

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

export function sriOf(data: Buffer, algo = 'sha512'): string {
  return `${algo}-${crypto.createHash(algo).update(data).digest('base64')}`;
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
  if (opts.requireTree !== false && (!fs.existsSync(path.join(srcDir, 'CMakeLists.txt')) || !fs.existsSync(path.join(srcDir, '.git')))) {
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
        if (!wrote || !fs.existsSync(bundle)) {
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
    throw new LlamaInstallError(
      'SOURCE_FAILED',
      `${what} failed (exit ${r.code}): ${lastLine(r.tail)}; delete the partial cache and retry.`,
      undefined,
      r.tail,
    );
  }
  return r.stdout;
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
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
    const r = await runProcess(npm, ['pack', `node-llama-cpp@${version}`, '--ignore-scripts', '--json', '--pack-destination', dest], {
      cwd: dest,
      env,
      signal,
      shell: process.platform === 'win32',
    });
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
