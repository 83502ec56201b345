import * as http from 'http';
import { AddressInfo, Socket } from 'net';

// A pass-through HTTP proxy between the extension and llama-server that notes every /infill
// request: when it opened and closed (answered, or closed by the extension = cancelled), what it
// asked for, and what the server streamed back. The E2E tests count server requests here, on the
// wire, rather than trusting a counter inside the extension. Every byte is forwarded unchanged.

export interface InfillRecord {
  start: number;
  end?: number;
  cancelled: boolean;
  nPredict: number;
  /** The extension's one-off FIM probe (empty prompt), not a completion. */
  probe: boolean;
  /** The cursor line up to the cursor, as sent (`prompt`). */
  prompt: string;
  /** What the server streamed by the time the exchange closed: the generated text, and why it stopped (undefined when it did not). */
  content?: string;
  stopType?: string;
}

export interface CountingProxy {
  url: string;
  records: InfillRecord[];
  /** Completion requests (n_predict > 0, not the probe): user requests and prefetches alike. */
  completions(): InfillRecord[];
  /** /infill requests open now. */
  openNow(): number;
  close(): Promise<void>;
}

/** The generated text and stop reason of a streamed /infill answer (server-sent events). */
function parseStream(body: string): { content: string; stopType?: string } {
  let content = '';
  let stopType: string | undefined;
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    try {
      const ev = JSON.parse(line.slice(6)) as { content?: string; stop?: boolean; stop_type?: string };
      if (typeof ev.content === 'string') content += ev.content;
      if (ev.stop) stopType = ev.stop_type;
    } catch {
      /* not JSON: ignored */
    }
  }
  return { content, stopType };
}

export async function startCountingProxy(upstream: string): Promise<CountingProxy> {
  const records: InfillRecord[] = [];
  const sockets = new Set<Socket>();
  const target = new URL(upstream);
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let rec: InfillRecord | undefined;
      if (req.url === '/infill') {
        let parsed: { n_predict?: number; prompt?: string; input_prefix?: string } = {};
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          /* forwarded as is */
        }
        rec = {
          start: Date.now(),
          cancelled: false,
          nPredict: parsed.n_predict ?? -1,
          probe: parsed.prompt === '' && parsed.input_prefix === '',
          prompt: parsed.prompt ?? '',
        };
        records.push(rec);
      }
      // What the server streamed, read when the exchange closes: the extension may close the
      // connection as soon as it has the final event, before the server's end of stream.
      const answer: Buffer[] = [];
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        if (rec) ures.on('data', (c: Buffer) => answer.push(c));
        ures.pipe(res);
      });
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      up.end(body);
      // The extension closed the connection before the answer ended: a cancel. Pass it on, so
      // llama-server sees it too.
      res.on('close', () => {
        if (rec && rec.end === undefined) {
          rec.end = Date.now();
          rec.cancelled = !res.writableFinished;
          Object.assign(rec, parseStream(Buffer.concat(answer).toString('utf8')));
        }
        if (!res.writableFinished) up.destroy();
      });
    });
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    records,
    completions: () => records.filter((r) => !r.probe && r.nPredict > 0),
    openNow: () => records.filter((r) => r.end === undefined).length,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}
