import * as assert from 'assert';
import * as http from 'http';
import { AddressInfo, Socket } from 'net';
import type { Page } from 'playwright-core';
import { ghostText, notificationTexts } from '../harness/browser';
import { INLINE_COMPLETION_SETTINGS, useWorkbench } from '../harness/workbench';

// Inline completions in the real VS Code (code-server + Chromium) against the real llama-server,
// with the requests counted on the wire: the connection file points the extension at a
// pass-through proxy in this test process, which forwards every byte to llama-server and notes
// when each /infill request opens and closes (answered, or closed by the extension = cancelled).
// Counting there, rather than trusting a counter inside the extension, measures what the
// server is actually asked. Random weights give gibberish; the mechanics are what is tested.

interface InfillRecord {
  start: number;
  end?: number;
  cancelled: boolean;
  nPredict: number;
  /** The extension's one-off FIM probe (empty prompt), not a completion. */
  probe: boolean;
}

interface CountingProxy {
  url: string;
  records: InfillRecord[];
  /** Completion requests (n_predict > 0, not the probe). */
  completions(): InfillRecord[];
  openNow(): number;
  close(): Promise<void>;
}

async function countingProxy(upstream: string): Promise<CountingProxy> {
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
        try { parsed = JSON.parse(body.toString('utf8')); } catch { /* forwarded as is */ }
        rec = { start: Date.now(), cancelled: false, nPredict: parsed.n_predict ?? -1, probe: parsed.prompt === '' && parsed.input_prefix === '' };
        records.push(rec);
      }
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      });
      up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
      up.end(body);
      // The extension closed the connection before the answer ended: a cancel. Pass it on, so
      // llama-server sees it too.
      res.on('close', () => {
        if (rec && rec.end === undefined) {
          rec.end = Date.now();
          rec.cancelled = !res.writableFinished;
        }
        if (!res.writableFinished) up.destroy();
      });
    });
  });
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    records,
    completions: () => records.filter((r) => !r.probe && r.nPredict > 0),
    openNow: () => records.filter((r) => r.end === undefined).length,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
  };
}

/**
 * Most requests open at the same time, ignoring overlaps shorter than `graceMs`: the proxy sees
 * the cancel of the old request and the start of the new one on different connections, so their
 * events can arrive a few milliseconds out of order although the extension closed first.
 */
function maxConcurrent(records: InfillRecord[], graceMs: number): number {
  const now = Date.now();
  let most = 0;
  for (const r of records) {
    const overlapping = records.filter((o) => o.start <= r.start && (o.end ?? now) > r.start + graceMs);
    most = Math.max(most, overlapping.length);
  }
  return most;
}

const FILE = 'geometry.py';
// A real-looking file with the cursor at the end of a function body: enough context that
// requests take a moment on two CPU cores.
const INITIAL = [
  '"""Small geometry helpers."""',
  '',
  'import math',
  '',
  '',
  ...Array.from({ length: 40 }, (_, i) => [`def area_${i}(w, h):`, `    """Area of rectangle ${i}."""`, `    return w * h * ${i + 1}`, '', ''].join('\n')),
  'def distance(a, b):',
  '    dx = a[0] - b[0]',
  '    dy = a[1] - b[1]',
  '    ',
].join('\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('E2E: inline completion mechanics in code-server (requests counted on the wire)', function () {
  this.timeout(300_000);

  let proxy: CountingProxy | undefined;
  const wb = useWorkbench({
    name: 'completion',
    files: { [FILE]: INITIAL },
    llama: { ctx: 4096, extraArgs: ['-np', '1'], proxy: async (upstream) => (proxy = await countingProxy(upstream)) },
    settings: {
      ...INLINE_COMPLETION_SETTINGS,
      // No debounce: every keystroke that VS Code turns into a request reaches the engine, so
      // the burst test sees the cancelling at work.
      'strata.completion.debounceMs': 0,
      // Long answers (random weights rarely write a line break): a request takes long enough
      // for the next keystroke to overtake it.
      'strata.completion.maxTokens': 128,
      'editor.autoIndent': 'none',
    },
    artifacts: () => ({ 'proxy-requests.json': JSON.stringify(proxy?.records ?? [], null, 1) }),
  });
  let page: Page;

  before(async function () {
    page = wb.page;
    await wb.openFile(FILE, { atEnd: true });
  });

  /** Types until a one-line suggestion that starts with two non-blank characters is shown; returns it. */
  async function typeUntilTypeableSuggestion(): Promise<string> {
    const attempts = ['return ', 'math.', 'sqrt(', 'dx', ' * ', 'dx + ', 'dy', ' * dy'];
    for (const chunk of attempts) {
      await page.keyboard.type(chunk, { delay: 40 });
      const shown = await wb.ghost().first().waitFor({ state: 'visible', timeout: 8000 }).then(() => true, () => false);
      if (!shown) continue;
      await sleep(400); // let a late answer for the last keystroke land
      const text = await ghostText(page);
      // Random weights: often non-ASCII gibberish, which Playwright types as text input too.
      const head = Array.from(text).slice(0, 2).join('');
      process.stderr.write(`      (suggestion after ${JSON.stringify(chunk)}: ${JSON.stringify(text.slice(0, 40))})\n`);
      if (Array.from(text).length >= 3 && head.trim().length === 2 && !text.includes('\n')) return text;
    }
    throw new Error('no one-line suggestion starting with two non-blank characters came up');
  }

  it('typing the start of the shown suggestion asks the server nothing (the rest is served from memory)', async () => {
    const shown = await typeUntilTypeableSuggestion();
    await sleep(800);
    const before = proxy!.completions().length;
    assert.strictEqual(proxy!.openNow(), 0, 'a request is still open before typing through');
    const typed = Array.from(shown).slice(0, 2).join('');
    await page.keyboard.type(typed, { delay: 120 });
    // Longer than the debounce and its adaptive part: a request would have gone out by now.
    await sleep(1200);
    const after = proxy!.completions().length;
    const rest = await ghostText(page);
    process.stderr.write(`      (suggestion ${JSON.stringify(shown.slice(0, 30))}…; typed ${JSON.stringify(typed)}; still shown ${JSON.stringify(rest.slice(0, 28))}…; completion requests before ${before}, after ${after})\n`);
    assert.strictEqual(after, before, `typing through made ${after - before} request(s)`);
    const norm = (s: string) => s.replace(/[ \t]+/g, ' ').trim();
    assert.strictEqual(norm(rest), norm(shown.slice(typed.length)), 'the rest of the suggestion is no longer shown');
  });

  it('after Tab accepts, the next completion is asked for at once, and only once', async () => {
    await wb.ghost().first().waitFor({ state: 'visible', timeout: 10_000 });
    const before = proxy!.completions().length;
    const tTab = Date.now();
    await page.keyboard.press('Tab');
    await sleep(1500);
    const fresh = proxy!.completions().slice(before);
    process.stderr.write(`      (after Tab: ${fresh.length} completion request(s), first ${fresh[0] ? fresh[0].start - tTab : '-'} ms after the key)\n`);
    assert.strictEqual(fresh.length, 1, `${fresh.length} requests after the accept`);
  });

  it('a fast burst of typing leaves at most one request in flight, cancelling the ones it overtakes', async () => {
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    await page.keyboard.type('    ', { delay: 10 });
    const from = proxy!.records.length;
    // Uneven fast typing: bursts of 20-35 ms with 160-230 ms hesitations, long enough for a
    // request to start (even with the debounce stretched for fast typing) but not to finish.
    const text = 'hypot = math.sqrt(dx * dx + dy * dy)';
    const gaps = [25, 190, 30, 210, 20, 170, 35, 230];
    for (let i = 0; i < text.length; i++) {
      await page.keyboard.type(text[i]);
      await sleep(gaps[i % gaps.length]);
    }
    await sleep(100);
    const openAfterBurst = proxy!.openNow();
    await sleep(3000);
    const burst = proxy!.records.slice(from).filter((r) => !r.probe);
    const cancelled = burst.filter((r) => r.cancelled).length;
    const most = maxConcurrent(burst, 25);
    process.stderr.write(`      (${text.length} keys: ${burst.length} requests, ${cancelled} cancelled by a later key, most open at once ${most}, open 100 ms after the last key ${openAfterBurst})\n`);
    assert.ok(burst.length >= 3, `only ${burst.length} requests: the burst did not exercise the cancel`);
    assert.ok(most <= 1, `${most} requests were open at once`);
    assert.ok(openAfterBurst <= 1, `${openAfterBurst} requests open after the burst`);
    assert.ok(cancelled >= 1, 'no request was cancelled by a later keystroke');
  });

  it('a server that goes away: one clear state in the status bar, no pop-ups, no request storm', async () => {
    await proxy!.close();
    const before = Date.now();
    await page.keyboard.press('Enter');
    await page.keyboard.type('    total = hypot + 1', { delay: 60 });
    await sleep(2500);
    const item = page.locator('.part.statusbar .statusbar-item').filter({ has: page.locator('.codicon-debug-disconnect') });
    await item.first().waitFor({ state: 'visible', timeout: 15_000 });
    const toasts = (await notificationTexts(page)).filter((t) => /strata|llama|completion/i.test(t));
    process.stderr.write(`      (server gone for ${Date.now() - before} ms: status item shown, ${toasts.length} Strata notifications)\n`);
    assert.deepStrictEqual(toasts, []);
  });
});
