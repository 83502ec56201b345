// FAKE: emulates the Hugging Face hub's resolve URLs (no hub is reachable from CI), and injects the faults the real one cannot be made to produce on demand: a connection cut mid-file, a wrong advertised hash, Range ignored, 401/404.
//
// Like the hub: GET/HEAD /<org>/<repo>/resolve/<rev>/<path> answers 302 to a CDN URL with
// X-Linked-Size, X-Linked-Etag ("<sha256>") and X-Repo-Commit; the CDN URL serves the bytes with
// Accept-Ranges and honours "Range: bytes=N-" with 206 and Content-Range.

import { createHash } from 'crypto';
import * as http from 'http';
import { AddressInfo } from 'net';

export interface HubFile {
  repo: string;
  path: string;
  content: Buffer;
  /** Advertise this hash instead of the true one (to test the mismatch path). */
  advertisedSha256?: string;
  /** Send no X-Linked-Etag (a mirror that does not pass it on). */
  noHash?: boolean;
  /** Close the connection after this many body bytes of the next N GETs (see cutTimes). */
  cutAfter?: number;
  cutTimes?: number;
  ignoreRange?: boolean;
  status?: number;
  /** Send the body slowly: bytes per 10 ms tick (for cancel tests). */
  throttle?: number;
}

export interface FakeHub {
  endpoint: string;
  requests: Array<{ method: string; url: string; range?: string }>;
  add(f: HubFile): void;
  close(): Promise<void>;
}

export async function startFakeHub(): Promise<FakeHub> {
  const files = new Map<string, HubFile>();
  const requests: FakeHub['requests'] = [];
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '', range: req.headers.range });
    const url = decodeURIComponent((req.url ?? '').split('?')[0]);
    const m = /^\/(.+?\/.+?)\/resolve\/[^/]+\/(.+)$/.exec(url);
    if (m) {
      const f = files.get(`${m[1]}/${m[2]}`);
      if (!f) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end('Entry not found');
      if (f.status) return void res.writeHead(f.status).end();
      const headers: Record<string, string> = {
        Location: `/cdn/${encodeURIComponent(`${m[1]}/${m[2]}`)}?sig=x`,
        'X-Linked-Size': String(f.content.length),
        'X-Repo-Commit': '0123456789abcdef0123456789abcdef01234567',
      };
      if (!f.noHash) headers['X-Linked-Etag'] = `"${f.advertisedSha256 ?? sha(f.content)}"`;
      return void res.writeHead(302, headers).end();
    }
    const c = /^\/cdn\/(.+)$/.exec(url);
    const f = c ? files.get(c[1]) : undefined;
    if (!f) return void res.writeHead(404).end();
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !f.ignoreRange) start = Number(range[1]);
    const body = f.content.subarray(start);
    const headers: Record<string, string> = { 'Content-Length': String(body.length), 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
    if (start > 0) headers['Content-Range'] = `bytes ${start}-${f.content.length - 1}/${f.content.length}`;
    res.writeHead(start > 0 ? 206 : 200, headers);
    if (req.method === 'HEAD') return void res.end();
    const cut = f.cutAfter !== undefined && (f.cutTimes ?? 1) > 0;
    if (cut) f.cutTimes = (f.cutTimes ?? 1) - 1;
    const limit = cut ? Math.min(body.length, f.cutAfter!) : body.length;
    if (f.throttle) {
      let at = 0;
      const tick = setInterval(() => {
        if (res.destroyed) return void clearInterval(tick);
        const n = Math.min(f.throttle!, limit - at);
        res.write(body.subarray(at, at + n));
        at += n;
        if (at >= limit) {
          clearInterval(tick);
          if (cut) res.destroy();
          else res.end();
        }
      }, 10);
      return;
    }
    if (cut) {
      res.write(body.subarray(0, limit), () => res.destroy());
    } else {
      res.end(body);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    add: (f) => files.set(`${f.repo}/${f.path}`, f),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
