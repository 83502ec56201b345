import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import { Writable } from 'stream';
import * as zlib from 'zlib';

// Unpacking release archives (.tar.gz and .zip) with Node alone: no `tar`/`unzip` on the user's
// PATH is assumed (Windows, minimal Linux images). Streaming, so a 500 MB archive never sits in
// memory. Every entry name is checked so that nothing lands outside the destination (no
// absolute paths, no "..", no symlink pointing out); a truncated or corrupt archive throws.

export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

export type ArchiveKind = 'tar.gz' | 'zip';

export function archiveKindOf(name: string): ArchiveKind | undefined {
  if (/\.(tar\.gz|tgz)$/i.test(name)) return 'tar.gz';
  if (/\.zip$/i.test(name)) return 'zip';
  return undefined;
}

/** The absolute destination of an archive entry, or throws if it would escape destDir. */
export function safeEntryPath(destDir: string, name: string): string {
  const clean = name.replace(/\\/g, '/');
  if (clean.startsWith('/') || /^[A-Za-z]:/.test(clean) || clean.split('/').includes('..')) {
    throw new ArchiveError(`The archive holds an unsafe path "${name}": refusing to unpack it.`);
  }
  const out = path.resolve(destDir, ...clean.split('/').filter((p) => p && p !== '.'));
  const root = path.resolve(destDir);
  if (out !== root && !out.startsWith(root + path.sep)) throw new ArchiveError(`The archive holds an unsafe path "${name}": refusing to unpack it.`);
  return out;
}

function checkLinkTarget(destDir: string, entryPath: string, target: string, name: string): void {
  if (path.isAbsolute(target) || /^[A-Za-z]:/.test(target)) throw new ArchiveError(`The archive's link "${name}" points outside it (${target}): refusing to unpack it.`);
  const resolved = path.resolve(path.dirname(entryPath), target);
  const root = path.resolve(destDir);
  if (resolved !== root && !resolved.startsWith(root + path.sep)) throw new ArchiveError(`The archive's link "${name}" points outside it (${target}): refusing to unpack it.`);
}

function fileMode(mode: number): number {
  return mode & 0o111 ? 0o755 : 0o644;
}

export async function extractArchive(file: string, kind: ArchiveKind, destDir: string, signal?: AbortSignal): Promise<number> {
  await fsp.mkdir(destDir, { recursive: true });
  return kind === 'zip' ? extractZip(file, destDir, signal) : extractTarGz(file, destDir, signal);
}

// ---------------------------------------------------------------------------------------------
// tar.gz (ustar, GNU long names, pax headers)

/** Returns the number of regular files written. */
export async function extractTarGz(file: string, destDir: string, signal?: AbortSignal): Promise<number> {
  const links: { entry: string; target: string; name: string; hard: boolean }[] = [];
  let files = 0;
  let buf: Buffer = Buffer.alloc(0);
  // Current entry being written.
  let remaining = 0;
  let padding = 0;
  let out: fs.WriteStream | undefined;
  let collect: Buffer[] | undefined;
  let collectKind: 'L' | 'x' | undefined;
  let longName: string | undefined;
  let paxPath: string | undefined;
  let paxLink: string | undefined;
  let ended = false;
  let zeroBlocks = 0;
  let writeError: Error | undefined;

  const finishEntry = async (): Promise<void> => {
    if (out) {
      const o = out;
      out = undefined;
      await new Promise<void>((resolve, reject) => o.end((e?: Error | null) => (e ? reject(e) : resolve())));
      if (writeError) throw writeError;
    }
    if (collect && collectKind) {
      const data = Buffer.concat(collect).toString('utf8');
      if (collectKind === 'L') longName = data.replace(/\0.*$/s, '');
      else {
        for (const rec of parsePax(data)) {
          if (rec.key === 'path') paxPath = rec.value;
          if (rec.key === 'linkpath') paxLink = rec.value;
        }
      }
      collect = undefined;
      collectKind = undefined;
    }
  };

  const writeData = async (chunk: Buffer): Promise<void> => {
    if (writeError) throw writeError;
    if (out) {
      if (!out.write(chunk)) await new Promise<void>((r) => out!.once('drain', () => r()));
    } else if (collect) collect.push(chunk);
  };

  const header = async (h: Buffer): Promise<void> => {
    if (h.every((b) => b === 0)) {
      zeroBlocks++;
      if (zeroBlocks >= 2) ended = true;
      return;
    }
    zeroBlocks = 0;
    if (!checksumOk(h)) throw new ArchiveError('The archive is corrupt (a tar header checksum does not match): download it again.');
    const type = String.fromCharCode(h[156] || 0x30);
    const size = parseOctal(h.subarray(124, 136));
    const mode = parseOctal(h.subarray(100, 108));
    const prefix = cstr(h.subarray(345, 500));
    let name = cstr(h.subarray(0, 100));
    if (prefix && h.subarray(257, 262).toString('latin1') === 'ustar') name = `${prefix}/${name}`;
    let linkName = cstr(h.subarray(157, 257));
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    if (paxPath !== undefined) {
      name = paxPath;
      paxPath = undefined;
    }
    if (paxLink !== undefined) {
      linkName = paxLink;
      paxLink = undefined;
    }
    remaining = size;
    padding = (512 - (size % 512)) % 512;
    if (type === 'L' || type === 'x' || type === 'g') {
      collect = [];
      collectKind = type === 'g' ? undefined : type;
      if (type === 'g') collect = undefined;
      return;
    }
    const target = safeEntryPath(destDir, name);
    if (type === '5') {
      await fsp.mkdir(target, { recursive: true });
    } else if (type === '0' || type === '\0' || type === '7') {
      await fsp.mkdir(path.dirname(target), { recursive: true });
      const o = fs.createWriteStream(target, { mode: fileMode(mode) });
      o.on('error', (e) => (writeError ??= e));
      out = o;
      files++;
    } else if (type === '2' || type === '1') {
      checkLinkTarget(destDir, target, type === '1' ? path.relative(path.dirname(target), safeEntryPath(destDir, linkName)) : linkName, name);
      links.push({ entry: target, target: linkName, name, hard: type === '1' });
    }
    // Other types (devices, fifos) are skipped: a release archive has none.
  };

  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      (async () => {
        if (signal?.aborted) throw new ArchiveError('Unpacking was cancelled.');
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        while (!ended) {
          if (remaining > 0) {
            if (!buf.length) break;
            const n = Math.min(remaining, buf.length);
            await writeData(buf.subarray(0, n));
            buf = buf.subarray(n);
            remaining -= n;
            if (remaining > 0) break;
          }
          if (padding > 0) {
            const n = Math.min(padding, buf.length);
            buf = buf.subarray(n);
            padding -= n;
            if (padding > 0) break;
          }
          await finishEntry();
          if (buf.length < 512) break;
          const h = buf.subarray(0, 512);
          buf = buf.subarray(512);
          await header(h);
        }
      })().then(() => cb(), (e: Error) => cb(e));
    },
  });
  try {
    await pipeline(fs.createReadStream(file), zlib.createGunzip(), sink);
  } catch (e) {
    if (out) {
      const o: fs.WriteStream = out;
      out = undefined;
      if (!o.closed) {
        await new Promise<void>((r) => {
          o.once('close', () => r());
          o.destroy();
        });
      }
    }
    if (e instanceof ArchiveError) throw e;
    throw new ArchiveError(`The archive could not be unpacked (${(e as Error).message}): it is truncated or corrupt; download it again.`);
  }
  if (remaining > 0 || (!ended && (out || collect || buf.length > 0))) {
    throw new ArchiveError('The archive ends in the middle of a file: it is truncated; download it again.');
  }
  await finishEntry();
  for (const l of links) {
    await fsp.rm(l.entry, { force: true });
    if (l.hard) await fsp.copyFile(safeEntryPath(destDir, l.target), l.entry);
    else await fsp.symlink(l.target, l.entry);
  }
  return files;
}

function cstr(b: Buffer): string {
  const i = b.indexOf(0);
  return b.subarray(0, i < 0 ? b.length : i).toString('utf8');
}

function parseOctal(b: Buffer): number {
  // GNU base-256 for big sizes: high bit of the first byte set.
  if (b[0] & 0x80) {
    let v = 0;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i];
    return v;
  }
  const s = cstr(b).trim();
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  const want = parseOctal(h.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === want;
}

function parsePax(text: string): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  const buf = Buffer.from(text, 'utf8');
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(buf.subarray(i, sp).toString('latin1'));
    if (!len) break;
    const rec = buf.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.push({ key: rec.slice(0, eq), value: rec.slice(eq + 1) });
    i += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// zip (stored and deflated entries; zip64 sizes)

interface ZipEntry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  /** Unix mode from the external attributes, when made on Unix. */
  unixMode?: number;
}

async function readAt(fd: fsp.FileHandle, pos: number, len: number): Promise<Buffer> {
  const b = Buffer.alloc(len);
  const { bytesRead } = await fd.read(b, 0, len, pos);
  if (bytesRead < len) throw new ArchiveError('The zip archive is truncated: download it again.');
  return b;
}

async function readZipDirectory(fd: fsp.FileHandle, size: number): Promise<ZipEntry[]> {
  const tailLen = Math.min(size, 65_557);
  if (tailLen < 22) throw new ArchiveError('The zip archive is truncated (too short): download it again.');
  const tail = await readAt(fd, size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ArchiveError('The zip archive has no central directory (it is truncated or not a zip): download it again.');
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    // zip64 end of central directory locator sits right before the EOCD.
    const loc = eocd - 20;
    if (loc < 0 || tail.readUInt32LE(loc) !== 0x07064b50) throw new ArchiveError('The zip64 archive is corrupt: download it again.');
    const z64 = Number(tail.readBigUInt64LE(loc + 8));
    const rec = await readAt(fd, z64, 56);
    if (rec.readUInt32LE(0) !== 0x06064b50) throw new ArchiveError('The zip64 archive is corrupt: download it again.');
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > size) throw new ArchiveError('The zip archive is truncated (its directory points past its end): download it again.');
  const cd = await readAt(fd, cdOffset, cdSize);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new ArchiveError('The zip archive\'s directory is corrupt: download it again.');
    const madeBy = cd.readUInt16LE(p + 4) >> 8;
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size32 = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const external = cd.readUInt32LE(p + 38);
    let localOffset = cd.readUInt32LE(p + 42);
    const name = cd.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    // zip64 extended information: present fields are those whose 32-bit value is 0xffffffff.
    for (let e = 0; e + 4 <= extra.length;) {
      const id = extra.readUInt16LE(e);
      const len = extra.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size32 === 0xffffffff) { size32 = Number(extra.readBigUInt64LE(q)); q += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = Number(extra.readBigUInt64LE(q)); q += 8; }
        if (localOffset === 0xffffffff) { localOffset = Number(extra.readBigUInt64LE(q)); }
      }
      e += 4 + len;
    }
    entries.push({ name, method, crc, compressedSize, size: size32, localOffset, ...(madeBy === 3 ? { unixMode: external >>> 16 } : {}) });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Returns the number of regular files written. */
export async function extractZip(file: string, destDir: string, signal?: AbortSignal): Promise<number> {
  const fd = await fsp.open(file, 'r');
  let files = 0;
  try {
    const size = (await fd.stat()).size;
    const entries = await readZipDirectory(fd, size);
    for (const e of entries) {
      if (signal?.aborted) throw new ArchiveError('Unpacking was cancelled.');
      const target = safeEntryPath(destDir, e.name);
      const isDir = e.name.endsWith('/') || (e.unixMode !== undefined && (e.unixMode & 0o170000) === 0o040000);
      if (isDir) {
        await fsp.mkdir(target, { recursive: true });
        continue;
      }
      const local = await readAt(fd, e.localOffset, 30);
      if (local.readUInt32LE(0) !== 0x04034b50) throw new ArchiveError(`The zip archive is corrupt at "${e.name}": download it again.`);
      const dataStart = e.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      if (dataStart + e.compressedSize > size) throw new ArchiveError(`The zip archive is truncated (at "${e.name}"): download it again.`);
      if (e.method !== 0 && e.method !== 8) throw new ArchiveError(`The zip archive uses compression method ${e.method} for "${e.name}", which Strata cannot unpack: use the .tar.gz archive or unpack it yourself and set "strata.server.path".`);
      await fsp.mkdir(path.dirname(target), { recursive: true });
      const isLink = e.unixMode !== undefined && (e.unixMode & 0o170000) === 0o120000;
      const chunks: Buffer[] = [];
      let crc = 0;
      let written = 0;
      const out = isLink ? undefined : fs.createWriteStream(target, { mode: fileMode(e.unixMode ?? 0o644) });
      let outError: Error | undefined;
      out?.on('error', (err) => (outError ??= err));
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          crc = zlib.crc32(chunk, crc);
          written += chunk.length;
          if (outError) cb(outError);
          else if (!out) {
            chunks.push(chunk);
            cb();
          } else if (out.write(chunk)) cb();
          else out.once('drain', () => cb());
        },
      });
      try {
        if (e.compressedSize > 0) {
          const src = fd.createReadStream({ start: dataStart, end: dataStart + e.compressedSize - 1, autoClose: false });
          if (e.method === 8) await pipeline(src, zlib.createInflateRaw(), sink);
          else await pipeline(src, sink);
        }
      } catch (err) {
        throw new ArchiveError(`The zip archive could not be unpacked at "${e.name}" (${(err as Error).message}): it is truncated or corrupt; download it again.`);
      } finally {
        if (out) await new Promise<void>((r) => out.end(() => r()));
      }
      if (written !== e.size || crc >>> 0 !== e.crc >>> 0) {
        throw new ArchiveError(`The zip archive is corrupt ("${e.name}" fails its CRC check): download it again.`);
      }
      if (isLink) {
        const linkTarget = Buffer.concat(chunks).toString('utf8');
        checkLinkTarget(destDir, target, linkTarget, e.name);
        await fsp.rm(target, { force: true });
        await fsp.symlink(linkTarget, target);
      } else {
        files++;
      }
    }
  } finally {
    await fd.close();
  }
  return files;
}
