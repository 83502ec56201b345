import * as assert from 'assert';
import type { Page } from 'playwright-core';
import { notificationTexts } from '../harness/browser';
import { CountingProxy, InfillRecord, startCountingProxy } from '../harness/countingProxy';
import { INLINE_COMPLETION_SETTINGS, useWorkbench } from '../harness/workbench';

// Inline completions in the real VS Code (code-server + Chromium) against the real llama-server,
// with the requests counted on the wire: the connection file points the extension at a
// pass-through proxy in this test process (test/harness/countingProxy), which forwards every
// byte to llama-server and notes when each /infill request opens and closes (answered, or closed
// by the extension = cancelled). Counting there, rather than trusting a counter inside the
// extension, measures what the server is actually asked. The tiny random model's long, slow
// answers are what a burst of typing must cancel; what a user judges of the suggestions (typing
// through, accepts, the prefetch) is tested on the trained model in suggestions.test.ts.

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
    llama: { ctx: 4096, extraArgs: ['-np', '1'], proxy: async (upstream) => (proxy = await startCountingProxy(upstream)) },
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
    process.stderr.write(
      `      (${text.length} keys: ${burst.length} requests, ${cancelled} cancelled by a later key, most open at once ${most}, open 100 ms after the last key ${openAfterBurst})\n`,
    );
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
