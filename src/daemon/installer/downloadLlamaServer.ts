import * as crypto from 'crypto';
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { strataCacheDir } from '../../core/paths';
import { extractArchive } from './downloadArchive';
import { exeName } from './findLlamaServer';
import { withLock, writeFileAtomic } from './cacheLock';
import { LlamaDownloadError, networkCause } from './llamaDownloadError';
import {
  AssetFacts,
  assetsForPlatform,
  classifyAsset,
  DEFAULT_RELEASE_API,
  fetchRelease,
  platformAssetArch,
  platformAssetOs,
  ReleaseInfo,
} from './llamaRelease';
import { llamaCacheRoot } from './llamaSource';
import { runProcess } from './runProcess';

// Installing an official llama.cpp release for this platform: take the archive llamaRelease.ts
// picks from the release's metadata, download it while hashing, refuse it unless its SHA-256
// matches the published digest (or one the caller gives), unpack it into a temp dir, check the
// binary runs, and only then rename it into <cache>/llama.cpp/downloads/<tag>-<variant>/. A
// wrong checksum, a truncated download, a corrupt archive or a cancel leave nothing behind.

export const INSTALL_MANIFEST = 'strata-install.json';

export interface DownloadProgress {
  phase: 'metadata' | 'download' | 'verify' | 'unpack' | 'check' | 'done';
  message: string;
  /** 0..100 while downloading, when the size is known. */
  percent?: number;
}

/** Streams url to file, hashing as it goes; throws on HTTP errors, short reads and cancel. */
export async function downloadToFile(
  url: string,
  file: string,
  opts: { expectedSize?: number; signal?: AbortSignal; onProgress?: (received: number, total?: number) => void; fetchImpl?: typeof fetch } = {},
): Promise<{ bytes: number; sha256: string }> {
  const f = opts.fetchImpl ?? fetch;
  const aborted = () => new LlamaDownloadError('ABORTED', 'The llama-server download was cancelled; nothing was installed.');
  let res: Response;
  try {
    res = await f(url, { headers: { 'user-agent': 'strata-coder' }, signal: opts.signal, redirect: 'follow' });
  } catch (e) {
    if (opts.signal?.aborted) throw aborted();
    throw new LlamaDownloadError('UNREACHABLE', `Downloading ${url} failed (${networkCause(e)}): check the network and retry.`);
  }
  if (!res.ok || !res.body)
    throw new LlamaDownloadError('HTTP', `Downloading ${url} failed with HTTP ${res.status}: retry later, or build llama-server instead.`);
  const header = Number(res.headers.get('content-length'));
  const total = Number.isFinite(header) && header > 0 ? header : opts.expectedSize;
  const hash = crypto.createHash('sha256');
  const out = fs.createWriteStream(file, { mode: 0o600 });
  let bytes = 0;
  try {
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
      bytes += value.length;
      if (!out.write(value)) await new Promise<void>((r) => out.once('drain', () => r()));
      opts.onProgress?.(bytes, total);
    }
  } catch (e) {
    if (opts.signal?.aborted) throw aborted();
    throw new LlamaDownloadError(
      'TRUNCATED',
      `The download of ${path.basename(file)} broke off after ${bytes} bytes (${(e as Error).message}): nothing was installed; retry.`,
    );
  } finally {
    await new Promise<void>((r) => out.end(() => r()));
  }
  if (opts.signal?.aborted) throw aborted();
  for (const [what, want] of [
    ['the server said', header],
    ['the release lists', opts.expectedSize],
  ] as const) {
    if (want && Number.isFinite(want) && want > 0 && bytes !== want) {
      throw new LlamaDownloadError(
        'TRUNCATED',
        `The download of ${path.basename(file)} is ${bytes} bytes but ${what} ${want}: it is truncated; nothing was installed; retry.`,
      );
    }
  }
  return { bytes, sha256: hash.digest('hex') };
}

export interface InstallManifest {
  schema: 1;
  source: 'download';
  tag: string;
  asset: string;
  url: string;
  sha256: string;
  backend: string;
  variant: string;
  /** Relative to the install dir. */
  serverRel: string;
  benchRel?: string;
  version: string;
  installedAt: string;
}

export interface InstalledRelease {
  id: string;
  dir: string;
  serverPath: string;
  benchPath?: string;
  manifest: InstallManifest;
  /** False when the same release was already installed. */
  installed: boolean;
}

export interface InstallReleaseOptions {
  /** Release metadata URL (GitHub API format). Default DEFAULT_RELEASE_API. */
  releaseUrl?: string;
  /** Or a release already fetched. */
  release?: ReleaseInfo;
  /** Asset name to install; default: the first of assetsForPlatform(prefer). */
  assetName?: string;
  /** Backends to prefer when picking (e.g. from the accelerator probe). */
  prefer?: string[];
  /** Required when the release publishes no digest for the asset. */
  sha256?: string;
  cacheDir?: string;
  platform?: NodeJS.Platform;
  arch?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  fetchImpl?: typeof fetch;
  /** Run `llama-server --version` before accepting it (default true). */
  verify?: boolean;
}

export function downloadsRoot(cacheDir = strataCacheDir()): string {
  return path.join(llamaCacheRoot(cacheDir), 'downloads');
}

export function installDirName(facts: AssetFacts): string {
  return `${facts.tag}-${facts.os}${facts.variant ? `-${facts.variant}` : ''}-${facts.arch}`.replace(/[^A-Za-z0-9._-]+/g, '_');
}

export function readInstallManifest(dir: string): InstallManifest | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, INSTALL_MANIFEST), 'utf8')) as InstallManifest;
    if (m.schema !== 1 || m.source !== 'download' || typeof m.serverRel !== 'string') return undefined;
    if (!fs.existsSync(path.join(dir, m.serverRel))) return undefined;
    return m;
  } catch {
    return undefined;
  }
}

async function findFile(dir: string, name: string): Promise<string | undefined> {
  const queue = [dir];
  while (queue.length) {
    const d = queue.shift()!;
    const entries = await fsp.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isFile() && e.name === name) return path.join(d, e.name);
    for (const e of entries) if (e.isDirectory()) queue.push(path.join(d, e.name));
  }
  return undefined;
}

export async function installLlamaRelease(opts: InstallReleaseOptions = {}): Promise<InstalledRelease> {
  const progress = (p: DownloadProgress) => opts.onProgress?.(p);
  const platform = opts.platform ?? process.platform;
  const releaseUrl = opts.releaseUrl ?? DEFAULT_RELEASE_API;
  if (!opts.release) progress({ phase: 'metadata', message: `Reading the llama.cpp release from ${releaseUrl}` });
  const release = opts.release ?? (await fetchRelease(releaseUrl, { signal: opts.signal, fetchImpl: opts.fetchImpl }));
  const candidates = assetsForPlatform(release, { platform, arch: opts.arch, prefer: opts.prefer });
  const asset = opts.assetName ? candidates.find((a) => a.name === opts.assetName) : candidates[0];
  if (!asset) {
    const names =
      release.assets
        .map((a) => a.name)
        .filter((n) => classifyAsset(n))
        .join(', ') || 'none';
    throw new LlamaDownloadError(
      'NO_ASSET',
      opts.assetName
        ? `llama.cpp ${release.tag} has no asset ${opts.assetName} for ${platformAssetOs(platform)}-${platformAssetArch(opts.arch)} (it has: ${names}): pick another or build llama-server instead.`
        : `llama.cpp ${release.tag} publishes no archive for ${platformAssetOs(platform)}-${platformAssetArch(opts.arch)} (it has: ${names}): build llama-server instead ("Strata: Build llama-server for This Machine").`,
    );
  }
  const want = (opts.sha256 ?? asset.sha256)?.toLowerCase();
  if (!want || !/^[0-9a-f]{64}$/.test(want)) {
    throw new LlamaDownloadError(
      'NO_CHECKSUM',
      `llama.cpp ${release.tag} publishes no SHA-256 for ${asset.name}, so Strata cannot verify it: give the checksum yourself or build llama-server instead.`,
    );
  }
  const cacheDir = opts.cacheDir ?? strataCacheDir();
  const root = downloadsRoot(cacheDir);
  const id = installDirName(asset.facts);
  const finalDir = path.join(root, id);
  await fsp.mkdir(root, { recursive: true });
  return withLock(finalDir, { what: 'The llama-server download', signal: opts.signal }, async (signal) => {
    const existing = readInstallManifest(finalDir);
    if (existing && existing.sha256 === want) {
      return {
        id,
        dir: finalDir,
        serverPath: path.join(finalDir, existing.serverRel),
        benchPath: existing.benchRel ? path.join(finalDir, existing.benchRel) : undefined,
        manifest: existing,
        installed: false,
      };
    }
    const tmp = await fsp.mkdtemp(path.join(root, `.tmp-${id}-`));
    try {
      // A fixed name on disk: the asset's name is the release API's to choose.
      const archive = path.join(tmp, `archive.${asset.facts.kind}`);
      let lastPct = -1;
      progress({ phase: 'download', message: `Downloading ${asset.name}`, percent: 0 });
      const got = await downloadToFile(asset.url, archive, {
        expectedSize: asset.size,
        signal,
        fetchImpl: opts.fetchImpl,
        onProgress: (n, total) => {
          if (!total) return;
          const pct = Math.floor((100 * n) / total);
          if (pct !== lastPct) {
            lastPct = pct;
            progress({
              phase: 'download',
              message: `Downloading ${asset.name} (${(n / 1048576).toFixed(0)} of ${(total / 1048576).toFixed(0)} MB)`,
              percent: pct,
            });
          }
        },
      });
      progress({ phase: 'verify', message: `Checking the SHA-256 of ${asset.name}` });
      if (got.sha256 !== want) {
        throw new LlamaDownloadError(
          'CHECKSUM',
          `${asset.name} does not match its published SHA-256 (got ${got.sha256.slice(0, 12)}…, expected ${want.slice(0, 12)}…): it was corrupted or tampered with on the way, so it was deleted and nothing was installed; retry, or build llama-server instead.`,
        );
      }
      progress({ phase: 'unpack', message: `Unpacking ${asset.name}` });
      const unpacked = path.join(tmp, 'x');
      try {
        await extractArchive(archive, asset.facts.kind, unpacked, signal);
      } catch (e) {
        if (signal.aborted) throw new LlamaDownloadError('ABORTED', 'The llama-server download was cancelled; nothing was installed.');
        throw new LlamaDownloadError('UNPACK', `${asset.name} could not be unpacked: ${(e as Error).message}`);
      }
      const server = await findFile(unpacked, exeName('llama-server', platform));
      if (!server)
        throw new LlamaDownloadError(
          'NO_BINARY',
          `${asset.name} holds no ${exeName('llama-server', platform)}: pick another archive or build llama-server instead.`,
        );
      const bench = await findFile(path.dirname(server), exeName('llama-bench', platform));
      let version = '';
      if (opts.verify !== false) {
        progress({ phase: 'check', message: 'Checking that the downloaded llama-server runs' });
        const env = { ...process.env };
        delete env.ELECTRON_RUN_AS_NODE;
        const r = await runProcess(server, ['--version'], { env, signal, timeoutMs: 30_000 }).catch((e: Error) => ({
          code: -1,
          tail: e.message,
          signal: null,
          aborted: false,
          timedOut: false,
          stdout: '',
        }));
        if (signal.aborted) throw new LlamaDownloadError('ABORTED', 'The llama-server download was cancelled; nothing was installed.');
        if (r.code !== 0) {
          throw new LlamaDownloadError(
            'VERIFY',
            `The downloaded llama-server does not run on this machine (${r.timedOut ? 'timed out' : `exit ${r.code}`}: ${r.tail.trim().split('\n').pop() ?? ''}): it was not installed; pick another archive or build llama-server instead.`,
          );
        }
        version = r.tail
          .split('\n')
          .filter((l) => /version:|built with/.test(l))
          .map((l) => l.replace(/^.*?(version:|built with)/, '$1').trim())
          .join('\n');
      }
      const manifest: InstallManifest = {
        schema: 1,
        source: 'download',
        tag: release.tag,
        asset: asset.name,
        url: asset.url,
        sha256: want,
        backend: asset.facts.backend,
        variant: asset.facts.variant,
        serverRel: path.relative(unpacked, server),
        ...(bench ? { benchRel: path.relative(unpacked, bench) } : {}),
        version,
        installedAt: new Date().toISOString(),
      };
      await writeFileAtomic(path.join(unpacked, INSTALL_MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
      // Replace an older copy of the same release (a different checksum) only now that the new one is complete.
      if (fs.existsSync(finalDir)) {
        const old = `${finalDir}.old-${process.pid}-${Date.now()}`;
        await fsp.rename(finalDir, old);
        await fsp.rm(old, { recursive: true, force: true });
      }
      await fsp.rename(unpacked, finalDir);
      progress({ phase: 'done', message: `llama-server ${release.tag} (${asset.facts.backend}) is installed in ${finalDir}`, percent: 100 });
      return {
        id,
        dir: finalDir,
        serverPath: path.join(finalDir, manifest.serverRel),
        benchPath: manifest.benchRel ? path.join(finalDir, manifest.benchRel) : undefined,
        manifest,
        installed: true,
      };
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
}

/** Removes temp dirs of downloads that died mid-way (a killed window); only stale ones, so a running download keeps its own. */
export async function sweepStaleDownloads(cacheDir = strataCacheDir(), maxAgeMs = 3_600_000): Promise<void> {
  const root = downloadsRoot(cacheDir);
  const entries = await fsp.readdir(root, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory() || !e.name.startsWith('.tmp-')) continue;
    const p = path.join(root, e.name);
    const st = await fsp.stat(p).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > maxAgeMs) await fsp.rm(p, { recursive: true, force: true });
  }
}
