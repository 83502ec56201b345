// FAKE: emulates the Hugging Face hub's resolve URLs (no hub is reachable from CI), and injects the faults the real one cannot be made to produce on demand: a connection cut mid-file, a wrong advertised hash, Range ignored, a wrong Content-Range, a file replaced mid-download, 401/404.
//
// Like the hub: GET/HEAD /<org>/<repo>/resolve/<rev>/<path> answers 302 to a CDN URL (on this
// server, or on another one: `cdn`) with X-Linked-Size, X-Linked-Etag ("<sha256>") and
// X-Repo-Commit; the CDN URL serves the bytes with Accept-Ranges, ETag and Last-Modified, and
// honours "Range: bytes=N-" with 206 and Content-Range unless If-Range names another version.

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
  /** Replace the content when the next ranged GET arrives (a new upload landing between the probe and the transfer). */
  replaceOnRangedGet?: Buffer;
  /** Answer a Range with a 206 that starts this many bytes earlier than asked (a broken proxy). */
  rangeOffBy?: number;
  /** Send neither ETag nor Last-Modified from the CDN. */
  noValidators?: boolean;
}

export interface FakeHub {
  endpoint: string;
  requests: Array<{ method: string; url: string; range?: string; ifRange?: string; authorization?: string }>;
  add(f: HubFile): void;
  /** Serve f at this exact request path (what a client's URL normalisation makes of a name with ".."). */
  addAt(pathname: string, f: HubFile): void;
  close(): Promise<void>;
}

export interface FakeHubOptions {
  /** Listen address (default 127.0.0.1; any 127.x.y.z is loopback on Linux). */
  host?: string;
  /** Base URL the resolve redirect points to (default: this server). */
  cdn?: () => string;
}

export async function startFakeHub(opts: FakeHubOptions = {}): Promise<FakeHub> {
  const files = new Map<string, HubFile>();
  const raw = new Map<string, HubFile>();
  const versions = new Map<HubFile, { etag: string; modified: string }>();
  const requests: FakeHub['requests'] = [];
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const version = (f: HubFile) => {
    let v = versions.get(f);
    if (!v || v.etag !== `"${sha(f.content).slice(0, 16)}"`) {
      // Last-Modified has one-second resolution: make each version's differ.
      v = { etag: `"${sha(f.content).slice(0, 16)}"`, modified: new Date(Date.now() + versions.size * 1000).toUTCString() };
      versions.set(f, v);
    }
    return v;
  };
  const server = http.createServer((req, res) => {
    requests.push({
      method: req.method ?? 'GET',
      url: req.url ?? '',
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      authorization: req.headers.authorization,
    });
    const url = decodeURIComponent((req.url ?? '').split('?')[0]);
    const m = /^\/(.+?\/.+?)\/resolve\/[^/]+\/(.+)$/.exec(url);
    const direct = raw.get(url);
    if (m || direct) {
      const f = direct ?? files.get(`${m![1]}/${m![2]}`);
      if (!f) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end('Entry not found');
      if (f.status) return void res.writeHead(f.status).end();
      const headers: Record<string, string> = {
        Location: `${opts.cdn?.() ?? ''}/cdn/${encodeURIComponent(`${f.repo}/${f.path}`)}?sig=x`,
        'X-Linked-Size': String(f.content.length),
        'X-Repo-Commit': '0123456789abcdef0123456789abcdef01234567',
      };
      if (!f.noHash) headers['X-Linked-Etag'] = `"${f.advertisedSha256 ?? sha(f.content)}"`;
      return void res.writeHead(302, headers).end();
    }
    const c = /^\/cdn\/(.+)$/.exec(url);
    const f = c ? files.get(c[1]) : undefined;
    if (!f) return void res.writeHead(404).end();
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && f.replaceOnRangedGet) {
      f.content = f.replaceOnRangedGet;
      f.replaceOnRangedGet = undefined;
    }
    const v = version(f);
    // If-Range: the range only if the client still has this version, else the whole file (RFC 9110 13.1.5).
    const ifRange = req.headers['if-range'] as string | undefined;
    const sameVersion = !ifRange || (f.noValidators ? false : ifRange === v.etag || ifRange === v.modified);
    let start = 0;
    if (range && !f.ignoreRange && sameVersion) start = Number(range[1]);
    const sent = Math.max(0, start - (start > 0 ? (f.rangeOffBy ?? 0) : 0));
    const body = f.content.subarray(sent);
    const headers: Record<string, string> = { 'Content-Length': String(body.length), 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
    if (!f.noValidators) Object.assign(headers, { ETag: v.etag, 'Last-Modified': v.modified });
    if (start > 0) headers['Content-Range'] = `bytes ${sent}-${f.content.length - 1}/${f.content.length}`;
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
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://${host}:${port}`,
    requests,
    add: (f) => files.set(`${f.repo}/${f.path}`, f),
    addAt: (pathname, f) => {
      raw.set(pathname, f);
      files.set(`${f.repo}/${f.path}`, f);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
