import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import * as zlib from 'zlib';

// Test helpers: write .tar.gz and .zip archives in the layouts llama.cpp's releases use (no
// `tar`/`zip` on PATH needed), and a local HTTP server that plays the release API and its
// download host, including the faults the tests need (wrong size, a connection cut mid-body).

export interface ArchiveFile {
  /** Path inside the archive, "/"-separated. */
  name: string;
  data?: Buffer;
  /** Copied from this file when data is absent. */
  from?: string;
  mode?: number;
  /** A symlink to this (relative) target instead of a file. */
  symlink?: string;
  /** tar only: a hard link to this archive path instead of a file. */
  hardlink?: string;
}

function content(f: ArchiveFile): Buffer {
  return f.data ?? (f.from ? fs.readFileSync(f.from) : Buffer.alloc(0));
}

function tarHeader(name: string, size: number, mode: number, type: string, link = ''): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar test helper: name too long: ${name}`);
  h.write(name, 0, 100, 'utf8');
  h.write(mode.toString(8).padStart(7, '0') + '\0', 100, 8, 'latin1');
  h.write('0000000\0', 108, 8, 'latin1');
  h.write('0000000\0', 116, 8, 'latin1');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 12, 'latin1');
  h.write(
    Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0') + '\0',
    136,
    12,
    'latin1',
  );
  h.write('        ', 148, 8, 'latin1');
  h.write(type, 156, 1, 'latin1');
  h.write(link, 157, 100, 'utf8');
  h.write('ustar\0', 257, 6, 'latin1');
  h.write('00', 263, 2, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/** A name ending in "/" is a folder entry; `impliedDirs: false` writes exactly the entries given (an attack needs its own order). */
export function writeTarGz(file: string, files: ArchiveFile[], opts: { impliedDirs?: boolean } = {}): void {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const f of files) {
    if (f.name.endsWith('/')) {
      dirs.add(f.name);
      parts.push(tarHeader(f.name, 0, 0o755, '5'));
      continue;
    }
    const segs = opts.impliedDirs === false ? [] : f.name.split('/').slice(0, -1);
    for (let i = 1; i <= segs.length; i++) {
      const d = segs.slice(0, i).join('/') + '/';
      if (!dirs.has(d)) {
        dirs.add(d);
        parts.push(tarHeader(d, 0, 0o755, '5'));
      }
    }
    if (f.symlink) {
      parts.push(tarHeader(f.name, 0, 0o777, '2', f.symlink));
      continue;
    }
    if (f.hardlink) {
      parts.push(tarHeader(f.name, 0, 0o644, '1', f.hardlink));
      continue;
    }
    const data = content(f);
    parts.push(tarHeader(f.name, data.length, f.mode ?? 0o644, '0'), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  fs.writeFileSync(file, zlib.gzipSync(Buffer.concat(parts), { level: 1 }));
}

/** A name ending in "/" is a folder entry. */
export function writeZip(file: string, files: ArchiveFile[]): void {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const data = f.symlink ? Buffer.from(f.symlink) : content(f);
    const deflate = !f.symlink && data.length > 0;
    const body = deflate ? zlib.deflateRawSync(data, { level: 1 }) : data;
    const crc = zlib.crc32(data) >>> 0;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0800, 6);
    lh.writeUInt16LE(deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    locals.push(lh, name, body);
    const mode = f.symlink ? 0o120777 : f.name.endsWith('/') ? 0o40755 : 0o100000 | (f.mode ?? 0o644);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE((3 << 8) | 20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt16LE(deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(body.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE((mode << 16) >>> 0, 38);
    ch.writeUInt32LE(offset, 42);
    central.push(ch, name);
    offset += lh.length + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  fs.writeFileSync(file, Buffer.concat([...locals, cd, end]));
}

export interface Route {
  /** Body to send; a file path is streamed. */
  body?: Buffer | string;
  file?: string;
  status?: number;
  /** Send a Content-Length of the full size but cut the connection after this many bytes. */
  cutAfter?: number;
  json?: unknown;
}

export interface TestHttpServer {
  url: string;
  routes: Map<string, Route>;
  hits: string[];
  close(): Promise<void>;
}

export async function startHttpServer(): Promise<TestHttpServer> {
  const routes = new Map<string, Route>();
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    hits.push(p);
    const r = routes.get(p);
    if (!r) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = r.json !== undefined ? Buffer.from(JSON.stringify(r.json)) : r.file ? fs.readFileSync(r.file) : Buffer.from(r.body ?? '');
    res.writeHead(r.status ?? 200, {
      'content-length': String(body.length),
      'content-type': r.json !== undefined ? 'application/json' : 'application/octet-stream',
    });
    if (r.cutAfter !== undefined) {
      res.write(body.subarray(0, r.cutAfter), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(path.join(d, e.name), r);
    }
  };
  if (fs.existsSync(dir)) walk(dir, '');
  return out.sort();
}
