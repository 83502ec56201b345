import * as path from 'path';

// Reads the npm tarball of node-llama-cpp in memory, to take the llama.cpp git bundle out of it.

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
 * Minimal ustar/pax/GNU reader, enough for npm tarballs, written before node-tar became a
 * dependency (downloadArchive.ts unpacks release archives with it); `tar` on PATH differs across
 * platforms (bsdtar on Windows and macOS).
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
