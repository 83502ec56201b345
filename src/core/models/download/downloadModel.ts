// A whole model: every part of a split GGUF, one after the other, with one progress bar, one
// disk-space check for all of it up front, and a lock so that two VS Code windows asking for the
// same model do not download it twice. Files land in <downloads>/<org>/<repo>/<path in repo>,
// which the local scan recognises. Hashes verified once are remembered in
// <downloads>/.strata-sha256.json, so a re-download (after deleting a file) is checked against
// the first one even through a mirror that sends no hash. Repository and file names are checked,
// and the folders checked on disk, before anything is written (modelPath.ts).

import * as fs from 'fs';
import * as lockfile from 'proper-lockfile';
import * as path from 'path';
import { DownloadError, DownloadedFile, downloadFile, freeDiskBytes, probeFile } from './downloadFile';
import { resolveUrl } from './hub';
import { makeDestinationFolder, modelDestination } from './modelPath';

export { modelDestination };

export interface ModelDownloadProgress {
  /** Repository path of the part being fetched. */
  file: string;
  index: number;
  count: number;
  /** Over all parts. */
  bytes: number;
  total: number;
  phase: 'connecting' | 'hashing' | 'downloading' | 'verifying';
}

export interface ModelDownloadRequest {
  endpoint: string;
  repo: string;
  /** Every part, in order. */
  files: readonly string[];
  revision?: string;
  downloadDir: string;
  /** Pinned hashes per part, or let the hub's hash (then the remembered one) decide. */
  sha256?: readonly string[] | 'verify-on-first-download';
  token?: string;
  signal?: AbortSignal;
  onProgress?: (p: ModelDownloadProgress) => void;
  reserveBytes?: number;
  freeBytes?: (dir: string) => Promise<number>;
}

export interface DownloadedModel {
  /** First part: what llama-server is given. */
  path: string;
  parts: DownloadedFile[];
}

export async function downloadModel(req: ModelDownloadRequest): Promise<DownloadedModel> {
  const dests = req.files.map((f) => modelDestination(req.downloadDir, req.repo, f));
  for (const d of dests) await makeDestinationFolder(req.downloadDir, d);
  const lockTarget = dests[0];
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(lockTarget, { realpath: false, lockfilePath: `${lockTarget}.download-lock`, stale: 30_000, update: 10_000 });
  } catch {
    throw new DownloadError(
      'http',
      `${path.basename(lockTarget)} is already being downloaded (by another VS Code window or Strata process); wait for it to finish.`,
    );
  }
  try {
    const store = hashStore(req.downloadDir);
    const sizes = await partSizes(req);
    const remaining = dests.reduce((s, d, i) => s + (fs.existsSync(d) ? 0 : sizes[i] - partBytes(d)), 0);
    const free = await (req.freeBytes ?? freeDiskBytes)(path.dirname(dests[0]));
    const reserve = req.reserveBytes ?? 512 * 1024 * 1024;
    if (free < remaining + reserve) {
      throw new DownloadError(
        'disk-full',
        `Not enough disk space for ${req.repo}: it needs ${(remaining / 1e9 + reserve / 1e9).toFixed(1)} GB more and ${path.dirname(dests[0])} has ${(free / 1e9).toFixed(1)} GB free; free some space or set "strata.models.downloadDirectory" to a larger disk.`,
      );
    }
    const total = sizes.reduce((a, b) => a + b, 0);
    const done: DownloadedFile[] = [];
    let before = 0;
    for (let i = 0; i < req.files.length; i++) {
      const key = `${req.repo}/${req.files[i]}`;
      const pinned = Array.isArray(req.sha256) ? req.sha256[i] : undefined;
      if (fs.existsSync(dests[i]) && store.get(key)) {
        // Finished and verified earlier: a finished name only ever appears after verification.
        done.push({ path: dests[i], size: fs.statSync(dests[i]).size, sha256: store.get(key)!, verification: 'matched', resumedFrom: 0 });
        before += sizes[i];
        continue;
      }
      const r = await downloadFile({
        url: resolveUrl(req.endpoint, req.repo, req.files[i], req.revision),
        dest: dests[i],
        sha256: pinned ?? store.get(key),
        sizeHint: sizes[i],
        token: req.token,
        signal: req.signal,
        reserveBytes: 0,
        freeBytes: req.freeBytes,
        onProgress: (p) => req.onProgress?.({ file: req.files[i], index: i, count: req.files.length, bytes: before + p.bytes, total, phase: p.phase }),
      });
      store.set(key, r.sha256);
      done.push(r);
      before += sizes[i];
    }
    return { path: dests[0], parts: done };
  } finally {
    await release().catch(() => undefined);
  }
}

/** Sizes of all parts, asked from the hub (HEAD through the redirect) before anything is written. */
async function partSizes(req: ModelDownloadRequest): Promise<number[]> {
  const out: number[] = [];
  for (const f of req.files) {
    // A failure here is reported by downloadFile with its own message.
    const head = await probeFile(resolveUrl(req.endpoint, req.repo, f, req.revision), req.token, req.signal, path.posix.basename(f)).catch(() => undefined);
    out.push(head?.size ?? 0);
  }
  return out;
}

function partBytes(dest: string): number {
  try {
    return fs.statSync(`${dest}.part`).size;
  } catch {
    return 0;
  }
}

function hashStore(dir: string): { get(k: string): string | undefined; set(k: string, v: string): void } {
  const file = path.join(dir, '.strata-sha256.json');
  const read = (): Record<string, string> => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  };
  return {
    get: (k) => read()[k],
    set: (k, v) => {
      const all = read();
      all[k] = v;
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(all, null, 1));
      fs.renameSync(tmp, file);
    },
  };
}
