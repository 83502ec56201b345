// One file from the hub, the careful way: ask for its size and hash first, refuse to start when
// the disk cannot hold it, write to "<name>.part" (never a name that looks finished), resume an
// interrupted transfer with an HTTP Range request, hash every byte, and only rename to the final
// name once the SHA-256 matches. A mismatch moves the bytes to a quarantine folder, so a
// corrupted or tampered file can be inspected but is never loaded.
//
// A resume must continue the same version of the file, or the result splices two: the part
// records the file's content hash and the server's validator (ETag, else Last-Modified), a resume
// happens only when one of them still matches, the Range request carries If-Range (so a file
// replaced since the probe comes back whole), and a 206 must start where we asked.
//
// The access token (HF_TOKEN) goes to the hub's own origin only: redirects are followed by hand
// and the Authorization header is dropped at the first hop to another scheme, host or port (the
// CDN's signed URL needs none), as browsers and huggingface_hub do.

import { createHash, Hash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { sha256FromEtag } from './hub';

export interface FileProgress {
  /** Bytes of this file on disk so far. */
  bytes: number;
  total: number;
  /** 'hashing' while the part already on disk is re-read on resume. */
  phase: 'connecting' | 'hashing' | 'downloading' | 'verifying';
}

export interface DownloadFileOptions {
  url: string;
  dest: string;
  /** Expected SHA-256 (lower-case hex), from a pinned list or a previous download; wins over the hub's header. */
  sha256?: string;
  /** Expected size when known before asking (presets); the hub's answer wins. */
  sizeHint?: number;
  token?: string;
  signal?: AbortSignal;
  onProgress?: (p: FileProgress) => void;
  /** Bytes to leave free on the disk besides the file (default 512 MiB). */
  reserveBytes?: number;
  /** Where mismatching files go (default: <dest dir>/.quarantine). */
  quarantineDir?: string;
  /** For tests: the free-space probe. */
  freeBytes?: (dir: string) => Promise<number>;
}

export interface DownloadedFile {
  path: string;
  size: number;
  sha256: string;
  /** 'matched': equal to the expected hash; 'recorded': nothing to compare with, hash kept for next time. */
  verification: 'matched' | 'recorded';
  resumedFrom: number;
}

export type DownloadErrorCode = 'not-found' | 'unauthorized' | 'http' | 'network' | 'disk-full' | 'checksum' | 'cancelled' | 'size-mismatch' | 'unsafe-name';

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
  constructor(
    readonly code: DownloadErrorCode,
    message: string,
    readonly quarantinedAt?: string,
  ) {
    super(message);
  }
}

interface PartMeta {
  url: string;
  size: number;
  sha256?: string;
  /** The server's ETag (strong) or Last-Modified for the bytes in the part. */
  validator?: string;
}

const MiB = 1024 * 1024;

export async function downloadFile(o: DownloadFileOptions): Promise<DownloadedFile> {
  const name = path.basename(o.dest);
  const part = `${o.dest}.part`;
  const metaFile = `${o.dest}.part.json`;
  await fs.promises.mkdir(path.dirname(o.dest), { recursive: true });
  o.onProgress?.({ bytes: 0, total: o.sizeHint ?? 0, phase: 'connecting' });

  // 1. Where the bytes are, how many, and their hash (the hub's redirect carries both).
  const head = await probeFile(o.url, o.token, o.signal, name);
  const total = head.size ?? o.sizeHint;
  if (total === undefined)
    throw new DownloadError('http', `The server did not say how large ${name} is, so Strata cannot check the disk first; try again or use another endpoint.`);
  const expected = o.sha256?.toLowerCase() ?? head.sha256;

  // 2. Resume only what was started against the same version of the file.
  let have = 0;
  const prev = readMeta(metaFile);
  if (prev && fs.existsSync(part) && sameVersion(prev, total, expected, head.validator)) {
    have = Math.min(fs.statSync(part).size, total);
  } else {
    await fs.promises.rm(part, { force: true });
  }
  const saveMeta = (validator: string | undefined) =>
    fs.writeFileSync(metaFile, JSON.stringify({ url: o.url, size: total, sha256: expected, validator } satisfies PartMeta));
  saveMeta(head.validator);

  // 3. Room for the rest, checked before the first byte.
  const free = await (o.freeBytes ?? freeDiskBytes)(path.dirname(o.dest));
  const reserve = o.reserveBytes ?? 512 * MiB;
  if (free < total - have + reserve) {
    throw new DownloadError(
      'disk-full',
      `Not enough disk space for ${name}: it needs ${gb(total - have + reserve)} and ${path.dirname(o.dest)} has ${gb(free)} free; free some space or set "strata.models.downloadDirectory" to a larger disk.`,
    );
  }

  let hash = createHash('sha256');
  if (have > 0) await hashExisting(part, have, hash, total, o);

  // 4. The transfer, from `have` on.
  let resumedFrom = have;
  if (have < total) {
    const r = await transfer(head, part, have, total, hash, o, name, saveMeta);
    have = r.have;
    hash = r.hash;
    if (r.restarted) resumedFrom = 0;
  }
  if (have !== total) throw new DownloadError('size-mismatch', `${name} ended at ${have} bytes instead of ${total}; it will resume on the next try.`);

  // 5. Verify, then (and only then) give it its real name.
  o.onProgress?.({ bytes: total, total, phase: 'verifying' });
  const got = hash.digest('hex');
  if (expected && got !== expected) {
    const qdir = o.quarantineDir ?? path.join(path.dirname(o.dest), '.quarantine');
    await fs.promises.mkdir(qdir, { recursive: true });
    const q = path.join(qdir, `${name}.${Date.now()}`);
    await fs.promises.rename(part, q);
    await fs.promises.rm(metaFile, { force: true });
    throw new DownloadError(
      'checksum',
      `${name} failed its checksum (SHA-256 ${got.slice(0, 12)}…, expected ${expected.slice(0, 12)}…), so it was not used and was moved to ${q}; download it again, or check the mirror set in "strata.models.hubEndpoint".`,
      q,
    );
  }
  await fs.promises.rename(part, o.dest);
  await fs.promises.rm(metaFile, { force: true });
  return { path: o.dest, size: total, sha256: got, verification: expected ? 'matched' : 'recorded', resumedFrom };
}

/** Resuming on size alone would splice two versions: the same content hash, else the same validator, or start over. */
function sameVersion(prev: PartMeta, total: number, expected: string | undefined, validator: string | undefined): boolean {
  if (prev.size !== total) return false;
  if (expected && prev.sha256) return prev.sha256 === expected;
  return !!validator && prev.validator === validator;
}

export interface Probe {
  /** Where the bytes are (after the redirects). */
  location: string;
  /** The origin the token may be sent to: the one first asked. */
  tokenOrigin: string;
  size?: number;
  sha256?: string;
  /** A strong ETag, else Last-Modified, of the final answer: what If-Range and a later resume compare. */
  validator?: string;
}

/** HEAD through the redirects, keeping the hub's X-Linked-* headers (size and hash) from the hop that sends them. */
export async function probeFile(url: string, token: string | undefined, signal: AbortSignal | undefined, name: string): Promise<Probe> {
  let sha256: string | undefined;
  let size: number | undefined;
  const tokenOrigin = new URL(url).origin;
  const { res, url: location } = await fetchFollowing(url, { method: 'HEAD', token, tokenOrigin, signal }, name, (hop) => {
    sha256 ??= sha256FromEtag(hop.headers.get('x-linked-etag')) ?? sha256FromEtag(hop.headers.get('etag'));
    const linked = Number(hop.headers.get('x-linked-size'));
    if (!size && linked > 0) size = linked;
  });
  checkStatus(res.status, name);
  const len = Number(res.headers.get('content-length'));
  if (!size && len > 0) size = len;
  return { location, tokenOrigin, size, sha256, validator: validatorOf(res) };
}

function validatorOf(res: Response): string | undefined {
  const etag = res.headers.get('etag');
  // A weak ETag may not be used with If-Range (RFC 9110 13.1.5).
  if (etag && !etag.startsWith('W/')) return etag;
  return res.headers.get('last-modified') ?? undefined;
}

interface FollowInit {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  token?: string;
  tokenOrigin: string;
  signal?: AbortSignal;
}

/** Follows redirects by hand: the token is sent while the URL stays on tokenOrigin and never again once it has left. */
async function fetchFollowing(url: string, init: FollowInit, name: string, onHop?: (res: Response) => void): Promise<{ res: Response; url: string }> {
  let current = url;
  let sendToken = !!init.token;
  for (let hop = 0; hop < 8; hop++) {
    if (new URL(current).origin !== init.tokenOrigin) sendToken = false;
    const headers = { ...init.headers, ...(sendToken ? { Authorization: `Bearer ${init.token}` } : {}) };
    const res = await request(current, { method: init.method ?? 'GET', headers, redirect: 'manual', signal: init.signal }, name);
    onHop?.(res);
    if (res.status < 300 || res.status >= 400 || res.status === 304) return { res, url: current };
    await res.body?.cancel().catch(() => undefined);
    const loc = res.headers.get('location');
    if (!loc) throw new DownloadError('http', `The server redirected ${name} without saying where; try again later.`);
    const next = new URL(loc, current);
    if (next.protocol !== 'https:' && next.protocol !== 'http:')
      throw new DownloadError(
        'http',
        `The server redirected ${name} to a ${next.protocol} address, which Strata does not follow; check "strata.models.hubEndpoint".`,
      );
    current = next.toString();
  }
  throw new DownloadError('http', `Too many redirects for ${name}; check "strata.models.hubEndpoint".`);
}

/** The bytes from `from` on: with If-Range, a file replaced since the probe comes back whole (200) rather than as a tail of the new one. */
function fetchFrom(head: Probe, from: number, o: DownloadFileOptions, name: string): Promise<{ res: Response }> {
  const headers: Record<string, string> = {};
  if (from > 0) {
    headers.Range = `bytes=${from}-`;
    if (head.validator) headers['If-Range'] = head.validator;
  }
  return fetchFollowing(head.location, { headers, token: o.token, tokenOrigin: head.tokenOrigin, signal: o.signal }, name);
}

/** A 206 must hold the range asked for: "bytes <from>-<last>/<total or *>". */
function rangeStartsAt(contentRange: string | null, from: number, total: number): boolean {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/i.exec(contentRange?.trim() ?? '');
  return !!m && Number(m[1]) === from && (m[3] === '*' || Number(m[3]) === total);
}

async function transfer(
  head: Probe,
  part: string,
  from: number,
  total: number,
  hash: Hash,
  o: DownloadFileOptions,
  name: string,
  saveMeta: (validator: string | undefined) => void,
): Promise<{ have: number; hash: Hash; restarted: boolean }> {
  let { res } = await fetchFrom(head, from, o, name);
  let restarted = false;
  if (from > 0 && res.status === 206 && !rangeStartsAt(res.headers.get('content-range'), from, total)) {
    // Another range than the one asked for (a broken proxy): appending it would corrupt the file, so fetch it whole.
    await res.body?.cancel().catch(() => undefined);
    restarted = true;
    ({ res } = await fetchFrom(head, 0, o, name));
  }
  checkStatus(res.status, name);
  let have = from;
  let flags = 'a';
  // 200 to a Range: the server ignored it, or the file changed since the probe (If-Range): start over rather than append a second copy.
  if (restarted || (from > 0 && res.status !== 206)) {
    restarted = true;
    have = 0;
    flags = 'w';
    hash = createHash('sha256');
  }
  // The bytes about to be written are this answer's version: what the next resume must match.
  if (have === 0) saveMeta(validatorOf(res) ?? head.validator);
  if (!res.body) throw new DownloadError('network', `The download of ${name} returned no data; try again.`);
  const out = fs.createWriteStream(part, { flags });
  // An fs stream can still fail after the loop stopped waiting on it: a write or the file's open
  // that completes after destroy() below. Without a listener that 'error' is uncaught and ends the
  // process (seen once in a test run at load 16: ERR_STREAM_DESTROYED from fs's write callback).
  // The first error is kept and thrown where the transfer would otherwise succeed.
  let writeError: Error | undefined;
  out.on('error', (e) => (writeError ??= e));
  let lastReport = 0;
  try {
    for await (const chunk of Readable.fromWeb(res.body as import('stream/web').ReadableStream<Uint8Array>)) {
      const buf = chunk as Buffer;
      hash.update(buf);
      have += buf.length;
      if (!out.write(buf)) await drained(out);
      const now = Date.now();
      if (now - lastReport > 200) {
        lastReport = now;
        o.onProgress?.({ bytes: have, total, phase: 'downloading' });
      }
    }
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    if (writeError) throw writeError;
  } catch (e) {
    out.destroy();
    if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
    throw translateError(e, name, part, o.signal);
  }
  o.onProgress?.({ bytes: have, total, phase: 'downloading' });
  return { have, hash, restarted };
}

function drained(out: fs.WriteStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => {
      out.off('drain', onDrain);
      reject(e);
    };
    const onDrain = () => {
      out.off('error', onError);
      resolve();
    };
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}

async function request(url: string, init: RequestInit, name: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw translateError(e, name, undefined, init.signal ?? undefined);
  }
}

function checkStatus(status: number, name: string): void {
  if (status === 200 || status === 206) return;
  if (status === 401 || status === 403)
    throw new DownloadError(
      'unauthorized',
      `The hub refused ${name} (HTTP ${status}): the repository may be gated; accept its licence on the hub and set an access token (HF_TOKEN).`,
    );
  if (status === 404) throw new DownloadError('not-found', `${name} is not on the server (HTTP 404); check the repository and file name.`);
  throw new DownloadError('http', `The server answered HTTP ${status} for ${name}; try again later.`);
}

function translateError(e: unknown, name: string, part: string | undefined, signal?: AbortSignal | null): DownloadError {
  if (e instanceof DownloadError) return e;
  const err = e as NodeJS.ErrnoException;
  if (signal?.aborted || err?.name === 'AbortError')
    return new DownloadError('cancelled', `The download of ${name} was cancelled; it will resume where it stopped.`);
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') {
    return new DownloadError(
      'disk-full',
      `The disk filled up while downloading ${name}; free some space and download again (the partial file ${path.basename(part ?? name)} is kept and the download resumes from it).`,
    );
  }
  return new DownloadError('network', `The download of ${name} was interrupted (${err?.message ?? String(e)}); run it again to resume.`);
}

async function hashExisting(part: string, bytes: number, hash: Hash, total: number, o: DownloadFileOptions): Promise<void> {
  // Node cannot save a hash's state, so a resumed file is read once more (fast next to the network).
  const stream = fs.createReadStream(part, { start: 0, end: bytes - 1, highWaterMark: 4 * MiB });
  let done = 0;
  let last = 0;
  for await (const chunk of stream) {
    if (o.signal?.aborted) throw new DownloadError('cancelled', `The download of ${path.basename(o.dest)} was cancelled; it will resume where it stopped.`);
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    if (Date.now() - last > 200) {
      last = Date.now();
      o.onProgress?.({ bytes: done, total, phase: 'hashing' });
    }
  }
}

function readMeta(file: string): PartMeta | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as PartMeta;
  } catch {
    return undefined;
  }
}

export async function freeDiskBytes(dir: string): Promise<number> {
  const s = await fs.promises.statfs(dir);
  return s.bavail * s.bsize;
}

function gb(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${Math.max(0, Math.round(n / 1e6))} MB`;
}
