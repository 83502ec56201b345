// Chat rendering cost: main-thread time of the chat webview per 1,000 streamed tokens, in
// Chromium, at a simulated 150 tok/s. Usage:
//   npx tsx bench/chat-render.ts [--tokens 2000] [--runs 3] [--rate 150]
// The page is the real webview (same html, same bundle) behind the test host shim. A timer in
// the page posts deltas the way the extension host does (batched every 33 ms); Chromium's own
// counters (CDP Performance.getMetrics: TaskDuration, ScriptDuration, LayoutDuration,
// RecalcStyleDuration) give the main-thread time, a PerformanceObserver the long tasks (>50 ms),
// and requestAnimationFrame the frame gaps.
import { launchBrowser } from '../test/harness/browser';
import { frames, startWebviewServer, toWebview, waitForHostMessage } from '../test/webview/harness';

interface Args {
  tokens: number;
  runs: number;
  rate: number;
}

function args(): Args {
  const a: Args = { tokens: 2000, runs: 3, rate: 150 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '') as keyof Args;
    if (!(k in a)) throw new Error(`unknown option ${argv[i]}; use --tokens N --runs N --rate N`);
    a[k] = Number(argv[i + 1]);
  }
  return a;
}

/** Token-sized pieces (llama-server streams one token per delta; ~3.5 characters each for code). */
function tokenize(text: string): string[] {
  return text.match(/\s*[A-Za-z]{1,5}|\s*\d{1,3}|\s*[^\sA-Za-z\d]|\s+/g) ?? [];
}

const PROSE = 'The function walks the list once, keeping a running total, and returns early when the budget is spent. ';
const CODE = [
  'export function sumWithin(values: number[], budget: number): number {',
  '  let total = 0;',
  '  for (const v of values) {',
  '    if (total + v > budget) break; // stop before the budget overflows',
  '    total += v;',
  '  }',
  '  return total;',
  '}',
].join('\n');

function mixedAnswer(tokens: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (out.length < tokens) {
    const part =
      i % 3 === 0
        ? `## Step ${i}\n\n${PROSE.repeat(2)}\n\n- first point about \`sumWithin\`\n- second point, **important**\n\n`
        : i % 3 === 1
          ? `\`\`\`ts\n${CODE}\n\`\`\`\n\n`
          : `${PROSE.repeat(3)}\n\n`;
    out.push(...tokenize(part));
    i++;
  }
  return out.slice(0, tokens);
}

function codeAnswer(tokens: number): string[] {
  const out = tokenize('Here is the whole file:\n\n```ts\n');
  while (out.length < tokens) out.push(...tokenize(CODE + '\n\n'));
  return out.slice(0, tokens);
}

interface Sample {
  tokens: number;
  seconds: number;
  taskMs: number;
  scriptMs: number;
  layoutMs: number;
  styleMs: number;
  longTasks: number;
  longTaskMs: number;
  p95FrameMs: number;
  maxFrameMs: number;
}

async function runOnce(
  page: import('playwright-core').Page,
  cdp: import('playwright-core').CDPSession,
  tokens: string[],
  rate: number,
  idle = false,
): Promise<Sample> {
  await toWebview(page, {
    type: 'conversation',
    conversation: { id: 'bench', title: 'bench', turns: [{ id: 'u', role: 'user', text: 'explain' }] },
    busy: false,
  });
  await toWebview(
    page,
    { type: 'append', turns: [{ id: 'a', role: 'assistant', text: '', status: 'streaming', model: 'bench' }] },
    { type: 'busy', busy: true },
  );
  await frames(page, 3);
  const metric = async () => {
    const m = (await cdp.send('Performance.getMetrics')).metrics;
    const get = (n: string) => (m.find((x) => x.name === n)?.value ?? 0) * 1000;
    return { task: get('TaskDuration'), script: get('ScriptDuration'), layout: get('LayoutDuration'), style: get('RecalcStyleDuration') };
  };
  const before = await metric();
  // Page-side driver, as a string so that no bundler helper leaks into the page.
  const result = (await page.evaluate(`new Promise((resolve) => {
    const tokens = ${JSON.stringify(tokens)};
    const idle = ${idle};
    const perMs = ${rate} / 1000;
    const long = [];
    const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) long.push(e.duration); });
    obs.observe({ type: 'longtask', buffered: false });
    const gaps = [];
    let lastFrame = performance.now();
    let running = true;
    const onFrame = (t) => { gaps.push(t - lastFrame); lastFrame = t; if (running) requestAnimationFrame(onFrame); };
    requestAnimationFrame(onFrame);
    const t0 = performance.now();
    let sent = 0;
    const timer = setInterval(() => {
      const due = Math.min(tokens.length, Math.floor((performance.now() - t0) * perMs));
      if (due > sent && idle) sent = due;
      if (due > sent) {
        window.postMessage({ type: 'delta', turnId: 'a', content: tokens.slice(sent, due).join('') }, '*');
        sent = due;
      }
      if (sent >= tokens.length) {
        clearInterval(timer);
        requestAnimationFrame(() => requestAnimationFrame(() => {
          running = false;
          obs.disconnect();
          gaps.sort((a, b) => a - b);
          resolve({ seconds: (performance.now() - t0) / 1000, long, p95: gaps[Math.floor(gaps.length * 0.95)] ?? 0, max: gaps[gaps.length - 1] ?? 0 });
        }));
      }
    }, 33);
  })`)) as { seconds: number; long: number[]; p95: number; max: number };
  const after = await metric();
  await toWebview(
    page,
    { type: 'turnEnd', turn: { id: 'a', role: 'assistant', text: tokens.join(''), status: 'done', model: 'bench' } },
    { type: 'busy', busy: false },
  );
  return {
    tokens: tokens.length,
    seconds: result.seconds,
    taskMs: after.task - before.task,
    scriptMs: after.script - before.script,
    layoutMs: after.layout - before.layout,
    styleMs: after.style - before.style,
    longTasks: result.long.length,
    longTaskMs: result.long.reduce((a, b) => a + b, 0),
    p95FrameMs: result.p95,
    maxFrameMs: result.max,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const a = args();
  const server = await startWebviewServer();
  const browser = await launchBrowser({ viewport: { width: 480, height: 900 } });
  try {
    const scenarios: [string, string[]][] = [
      ['prose, lists and code blocks', mixedAnswer(a.tokens)],
      ['one long code block', codeAnswer(a.tokens)],
    ];
    console.log(
      `chat webview render cost at ${a.rate} tok/s, ${a.tokens} tokens per run, median of ${a.runs} runs (Chromium ${browser.context.browser()?.version() ?? ''})`,
    );
    for (const [name, tokens] of scenarios) {
      const samples: Sample[] = [];
      const idleSamples: Sample[] = [];
      for (let r = 0; r < a.runs; r++) {
        const page = await browser.context.newPage();
        await page.goto(server.url);
        await waitForHostMessage(page, (m): m is { type: 'ready' } => m.type === 'ready');
        const cdp = await browser.context.newCDPSession(page);
        await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
        samples.push(await runOnce(page, cdp, tokens, a.rate));
        // The same time with no tokens: what the page, the bench's timer and its frame probe cost anyway.
        if (r === 0) idleSamples.push(await runOnce(page, cdp, tokens, a.rate, true));
        await cdp.detach();
        await page.close();
      }
      const per1k = (k: keyof Sample) => median(samples.map((s) => (s[k] / s.tokens) * 1000));
      const chars = tokens.join('').length;
      console.log(`\n${name} (${chars.toLocaleString('en-US')} characters, ${median(samples.map((s) => s.seconds)).toFixed(1)} s of streaming):`);
      const idle1k = median(idleSamples.map((s) => (s.taskMs / s.tokens) * 1000));
      console.log(
        `  main-thread busy per 1,000 tokens: ${per1k('taskMs').toFixed(0)} ms total, ${(per1k('taskMs') - idle1k).toFixed(0)} ms above an idle page (idle: ${idle1k.toFixed(0)} ms)`,
      );
      console.log(`    of which script ${per1k('scriptMs').toFixed(0)} ms, layout ${per1k('layoutMs').toFixed(0)} ms, style ${per1k('styleMs').toFixed(0)} ms`);
      console.log(`  = ${(median(samples.map((s) => s.taskMs / (s.seconds * 1000))) * 100).toFixed(1)} % of one core while streaming`);
      console.log(
        `  long tasks (>50 ms): ${median(samples.map((s) => s.longTasks))} (${median(samples.map((s) => s.longTaskMs)).toFixed(0)} ms); frame gap p95 ${median(samples.map((s) => s.p95FrameMs)).toFixed(1)} ms, max ${median(samples.map((s) => s.maxFrameMs)).toFixed(1)} ms`,
      );
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
