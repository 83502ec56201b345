import * as fs from 'fs';
import * as path from 'path';
import { performance } from 'perf_hooks';
import {
  CompletionEngine,
  CompletionSettings,
  DEFAULT_COMPLETION_SETTINGS,
  percentile,
  REUSE_ALL,
  REUSE_NONE,
  ReuseFeatures,
} from '../../src/core/completion/completionEngine';
import { Cursor, TextDocumentLines } from '../../src/core/completion/document';
import { LlamaClient } from '../../src/core/llama/client';
import { benchModel } from '../../test/fixtures/coderModel';
import { trainedContext } from '../quality/measure';
import { startLlamaServer } from '../../test/harness/llamaServer';
import { acceptFrom, keysToType } from './accept';
import { benchmarkSources, holdoutSources, SourceFile, tenThousandLineFile } from './sources';
import { Mode, Result, table } from './table';
import { Typist } from './typist';

// Inline-completion benchmark: a simulated developer re-types regions of real source files
// (by default the held-out files the trained model never saw; --sources project: llama.cpp and
// npm packages) top to bottom, with realistic pauses, typos and auto-indent, while the real
// completion engine asks the real llama-server, and accepts a suggestion whenever it is what
// comes next (Tab; in the "words" mode also word by word). The same typist runs once per mode in
// this process, each against a fresh llama-server. See bench/README.md.
//
//   npx tsx bench/completions/run.ts [--files 6] [--regions 2] [--keys 120] [--seed 7]
//       [--debounce 150] [--ctx N] [--cpu-keys 800] [--model file.gguf] [--ablation] [--json out.json]
//       [--modes baseline,reuse,words] (also: cold, a server with its prompt cache off)
//       [--sources holdout|project]
//       [--max-tokens N] (default: the product's 64; 16 on random weights, which never end a line)
//       [--ctx N] (default: the model's trained context, at most 8192)
//       [--server-args "-t 1"]   (default -t 1: two compute threads on a shared 2-core machine spin
//                                 against each other and against other work, and timings go wild)
//
// Default model: the trained coder model (test/fixtures/model/strata-test-coder.gguf), else the
// tiny random-weight one, with a warning (nothing is ever accepted then).
//
// Time is simulated for the typist (no sleeping through pauses) and real for everything the
// engine and the server do: a request is aborted exactly when the next keystroke would come, so
// a slow answer is cancelled as it would be in the editor.

interface Options {
  files: number;
  regions: number;
  keys: number;
  seed: number;
  debounce: number;
  ctx?: number;
  model?: string;
  ablation: boolean;
  json?: string;
  cpuKeys: number;
  serverArgs: string[];
  maxTokens?: number;
  modes: string[];
  sources: 'holdout' | 'project';
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    files: 6,
    regions: 2,
    keys: 120,
    seed: 7,
    debounce: 150,
    ablation: false,
    cpuKeys: 800,
    serverArgs: ['-t', '1'],
    modes: ['baseline', 'reuse', 'words'],
    sources: 'holdout',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--files') o.files = Number(v());
    else if (a === '--regions') o.regions = Number(v());
    else if (a === '--keys') o.keys = Number(v());
    else if (a === '--seed') o.seed = Number(v());
    else if (a === '--debounce') o.debounce = Number(v());
    else if (a === '--ctx') o.ctx = Number(v());
    else if (a === '--model') o.model = v();
    else if (a === '--ablation') o.ablation = true;
    else if (a === '--json') o.json = v();
    else if (a === '--cpu-keys') o.cpuKeys = Number(v());
    else if (a === '--max-tokens') o.maxTokens = Number(v());
    else if (a === '--server-args') o.serverArgs = v().split(' ').filter(Boolean);
    else if (a === '--modes') o.modes = v().split(',');
    else if (a === '--sources') o.sources = v() === 'project' ? 'project' : 'holdout';
    else throw new Error(`unknown argument ${a} (see the header of bench/completions/run.ts)`);
  }
  return o;
}

interface Region {
  file: SourceFile;
  /** Document text with the region's lines replaced by one empty line. */
  before: string[];
  after: string[];
  target: string;
  indent: string;
}

/** `count` regions per file, spread through it, each about `keys` characters of code. */
function pickRegions(files: SourceFile[], count: number, keys: number): Region[] {
  const out: Region[] = [];
  for (const file of files) {
    const lines = file.text.split(/\r?\n/);
    for (let r = 0; r < count; r++) {
      let start = Math.floor(lines.length * (0.3 + (0.45 * r) / Math.max(1, count - 1 || 1)));
      while (start < lines.length - 1 && lines[start].trim() === '') start++;
      let end = start;
      let chars = 0;
      while (end < lines.length && chars < keys) chars += lines[end++].length + 1;
      const region = lines.slice(start, end);
      const indent = /^[ \t]*/.exec(region[0])![0];
      out.push({ file, before: lines.slice(0, start), after: lines.slice(end), target: region.join('\n').slice(indent.length), indent });
    }
  }
  return out;
}

async function serverMetrics(url: string, apiKey: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${apiKey}` } })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^llamacpp:(\w+) ([\d.e+-]+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

/** Runs the typist over `regions` against `engine`; returns what it saw. */
async function typeRegions(
  engine: CompletionEngine,
  regions: Region[],
  others: SourceFile[],
  o: Options,
  typist: Typist,
  acc: Result,
  acceptWords: boolean,
): Promise<void> {
  let prevRegion: Region | undefined;
  for (const [ri, region] of regions.entries()) {
    // What the editor would have offered as extra context by now: open tabs, something looked
    // up in another file, and the region edited before this one.
    const other = others[(ri * 3 + 1) % others.length];
    const otherLines = other.text.split('\n');
    engine.extra.pick(other.name, otherLines.slice(0, 64), 'tab');
    const at = Math.floor(typist.random() * Math.max(1, otherLines.length - 64));
    engine.extra.pick(other.name, otherLines.slice(at, at + 64), 'view');
    if (prevRegion) {
      const lines = [...prevRegion.before.slice(-32), ...prevRegion.target.split('\n').slice(0, 32)];
      engine.extra.pick(prevRegion.file.name, lines, 'edit');
    }
    prevRegion = region;

    const doc = new TextDocumentLines(
      [...region.before, region.indent, ...region.after].join('\n'),
      `file:///${region.file.name}`,
      region.file.languageId,
      region.file.name,
    );
    let cursor: Cursor = { line: region.before.length, character: region.indent.length };
    let done = 0;
    for (;;) {
      const k = typist.next(region.target.slice(done));
      if (!k) break;
      if (k.backspace) {
        cursor = doc.replace({ line: cursor.line, character: cursor.character - 1 }, cursor, '');
      } else {
        cursor = doc.insert(cursor, k.insert);
      }
      done += k.advances;
      acc.keys++;
      acc.typedSeconds += k.gapMs / 1000;
      let shown = await attempt(engine, doc, cursor, k.gapMs, o, acc);
      // Accept what is exactly what comes next, again while the next suggestion (the prefetch
      // after a Tab, the rest after a word) still is. Not in the middle of fixing a typo.
      while (shown && !typist.busy) {
        const a = acceptFrom(shown, region.target.slice(done), acceptWords);
        if (!a) break;
        cursor = doc.insert(cursor, a.text);
        done += a.text.length;
        acc.keys += a.keys;
        acc.acceptKeys += a.keys;
        acc.savedKeys += keysToType(a.text) - a.keys;
        // VS Code runs the item's command (the engine's prefetch) on a full accept only.
        if (a.how === 'full') {
          acc.accepted++;
          engine.accepted(doc, cursor);
        } else {
          acc.acceptedWords++;
        }
        // A moment to read the next suggestion.
        acc.typedSeconds += 0.4;
        shown = await attempt(engine, doc, cursor, 400, o, acc);
      }
    }
  }
}

/** Timings of a fixed ~0.1 ms loop taken between attempts: the machine's own noise. */
const noise: number[] = [];
let sink = 0;
function fixedWork(): void {
  const t0 = performance.now();
  let x = 0;
  for (let j = 0; j < 150_000; j++) x += j * 1.0001;
  sink += x;
  noise.push(performance.now() - t0);
}

let lastCancel = -Infinity;

/** The simulated typist's clock (ms): the engine's notion of "now" for its debounce and back-off. */
const clock = { t: 0 };

/** One keystroke's completion, as the provider would make it; returns the suggestion shown. */
async function attempt(engine: CompletionEngine, doc: TextDocumentLines, cursor: Cursor, gapMs: number, o: Options, acc: Result): Promise<string | undefined> {
  const started = performance.now();
  const abortedBefore = engine.stats.aborted;
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let requestedAt: number | undefined;
  let wait = o.debounce;
  const r = await engine.complete(doc, cursor, {
    signal: ac.signal,
    beforeRequest: async () => {
      wait = engine.debounceMs(o.debounce);
      if (gapMs < wait) return false; // the next key comes first: the debounce never fires
      requestedAt = performance.now();
      timer = setTimeout(() => ac.abort(), gapMs - wait);
      return true;
    },
  });
  if (timer) clearTimeout(timer);
  if (r) {
    acc.shown++;
    if (r.source === 'cache' || r.source === 'typed-through') acc.fromMemory++;
    if (r.source === 'typed-through') acc.typedThrough++;
  }
  // Idle work (extra context into the ring, cache warm-up) once the user has paused for 1 s.
  const used = requestedAt !== undefined ? wait + (performance.now() - requestedAt) : 0;
  const idleAt = Math.max(1000, used);
  if (gapMs - idleAt > 50) await engine.idle(doc, cursor, AbortSignal.timeout(Math.round(gapMs - idleAt)));
  clock.t += gapMs;
  fixedWork();
  // Simulated time runs ahead of real time (a pause costs nothing here). That is only fair while
  // the server has nothing pending: llama-server notices a cancelled request at its next token,
  // or within a second while it has none to send, and until then it holds an HTTP thread. So for
  // a while after a cancel, the rest of each pause is waited out for real.
  if (engine.stats.aborted > abortedBefore) lastCancel = performance.now();
  const rest = gapMs - (performance.now() - started);
  if (rest > 0 && performance.now() - lastCancel < 1200) await new Promise((res) => setTimeout(res, rest));
  return r?.text;
}

async function runMode(
  mode: Mode,
  regions: Region[],
  others: SourceFile[],
  big: SourceFile,
  model: string,
  o: Options & { maxTokens: number; ctx: number },
): Promise<Result> {
  const llama = await startLlamaServer({ model, ctx: o.ctx, extraArgs: ['--metrics', '-np', '1', ...(mode.serverArgs ?? []), ...o.serverArgs] });
  const client = new LlamaClient({ url: llama.url, apiKey: llama.apiKey });
  const settings: CompletionSettings = { ...DEFAULT_COMPLETION_SETTINGS, maxTokens: o.maxTokens, reuse: mode.reuse };
  const acc: Result = {
    mode: mode.name,
    keys: 0,
    typedSeconds: 0,
    wallSeconds: 0,
    requests: 0,
    aborted: 0,
    answered: 0,
    failed: 0,
    warmUps: 0,
    prefetches: 0,
    fromMemory: 0,
    typedThrough: 0,
    shown: 0,
    accepted: 0,
    acceptedWords: 0,
    acceptKeys: 0,
    savedKeys: 0,
    neededKeys: regions.reduce((s, r) => s + keysToType(r.target), 0),
    promptEvaluated: 0,
    promptReused: 0,
    predicted: 0,
    latencies: [],
    cpuKeys: 0,
    cpu: [],
    noiseP50: NaN,
    noiseP99: NaN,
    log: [],
  };
  try {
    const engine = new CompletionEngine(
      () => client,
      () => settings,
      {
        now: () => clock.t,
        log: (level, msg) => {
          if (level !== 'debug') acc.log.push(msg);
        },
      },
    );
    const m0 = await serverMetrics(llama.url, llama.apiKey);
    const t0 = performance.now();
    await typeRegions(engine, regions, others, o, new Typist(o.seed), acc, mode.acceptWords);
    acc.wallSeconds = (performance.now() - t0) / 1000;
    // Let a last aborted request finish so the server's counters include it.
    await new Promise((r) => setTimeout(r, 1200));
    const m1 = await serverMetrics(llama.url, llama.apiKey);
    acc.promptEvaluated = m1.prompt_tokens_total - m0.prompt_tokens_total;
    acc.predicted = m1.tokens_predicted_total - m0.tokens_predicted_total;
    acc.promptReused = engine.stats.cachedTokens;
    Object.assign(acc, {
      requests: engine.stats.requests,
      aborted: engine.stats.aborted,
      answered: engine.stats.answered,
      failed: engine.stats.failed,
      warmUps: engine.stats.warmUps,
      prefetches: engine.stats.prefetches,
    });
    acc.latencies = [...engine.latencySamples];

    // The extension's own main-thread time per completion on a 10,000-line file.
    const cpuEngine = new CompletionEngine(
      () => client,
      () => settings,
      { now: () => clock.t },
    );
    const lines = big.text.split('\n');
    const start = 5000;
    const cpuRegion: Region = {
      file: big,
      before: lines.slice(0, start),
      after: lines.slice(start + 200),
      indent: /^[ \t]*/.exec(lines[start])![0],
      target: lines
        .slice(start, start + 200)
        .join('\n')
        .slice(/^[ \t]*/.exec(lines[start])![0].length, undefined),
    };
    cpuRegion.target = cpuRegion.target.slice(0, o.cpuKeys);
    const cpuAcc: Result = {
      ...acc,
      keys: 0,
      latencies: [],
      shown: 0,
      fromMemory: 0,
      typedThrough: 0,
      accepted: 0,
      acceptedWords: 0,
      acceptKeys: 0,
      savedKeys: 0,
      typedSeconds: 0,
    };
    noise.length = 0;
    await typeRegions(cpuEngine, [cpuRegion], others, o, new Typist(o.seed + 1), cpuAcc, mode.acceptWords);
    acc.cpu = [...cpuEngine.cpuSamples];
    acc.cpuKeys = cpuAcc.keys;
    acc.noiseP50 = percentile(noise, 50);
    acc.noiseP99 = percentile(noise, 99);
  } finally {
    await llama.stop();
  }
  return acc;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const sources = opts.sources === 'holdout' ? holdoutSources(opts.files, opts.seed) : (await benchmarkSources()).slice(0, opts.files);
  const big = await tenThousandLineFile();
  const bm = await benchModel(opts.model);
  const model = bm.path;
  // Random weights never end a line: 16 tokens is about one line of code.
  // Past its trained context a model writes noise: no bigger window than it learned.
  const o = {
    ...opts,
    maxTokens: opts.maxTokens ?? (bm.random ? 16 : DEFAULT_COMPLETION_SETTINGS.maxTokens),
    ctx: opts.ctx ?? Math.min(8192, (await trainedContext(model)).ctx ?? 8192),
  };
  const regions = pickRegions(sources, o.regions, o.keys);
  const known: Record<string, Mode> = {
    // A client as users meet it: llama-server's defaults (cache_prompt on), no reuse of its own.
    baseline: { name: 'baseline (server defaults, no client reuse)', reuse: REUSE_NONE, acceptWords: false },
    reuse: { name: 'reuse on', reuse: REUSE_ALL, acceptWords: false },
    words: { name: 'reuse on, accepts by word too', reuse: REUSE_ALL, acceptWords: true },
    cold: { name: 'prompt cache off (worse than any real client)', reuse: REUSE_NONE, acceptWords: false, serverArgs: ['--no-cache-prompt'] },
  };
  const modes: Mode[] = o.modes.map((m) => {
    if (!known[m]) throw new Error(`unknown mode ${m} (${Object.keys(known).join(', ')})`);
    return known[m];
  });
  if (o.ablation) {
    for (const k of Object.keys(REUSE_ALL) as (keyof ReuseFeatures)[])
      modes.push({ name: `on, no ${k}`, reuse: { ...REUSE_ALL, [k]: false }, acceptWords: false });
  }
  process.stderr.write(`files: ${sources.map((s) => s.label).join(', ')}; model ${path.basename(model)}${bm.random ? ' (RANDOM WEIGHTS)' : ''}\n`);
  const results: Result[] = [];
  for (const mode of modes) {
    process.stderr.write(`running ${mode.name} …\n`);
    const r = await runMode(mode, regions, sources, big, model, o);
    for (const l of r.log) process.stderr.write(`  [engine] ${l}\n`);
    process.stderr.write(
      `  ${r.keys} keys, ${r.requests} requests (${r.aborted} cancelled, ${r.failed} failed), ${r.promptEvaluated} prompt tokens evaluated, ${r.wallSeconds.toFixed(0)} s\n`,
    );
    results.push(r);
  }
  // For reference: what a provider that joins and splits the whole text per keystroke pays.
  const lines = big.text.split('\n');
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) lines.join('\n').split('\n');
  const naive = (performance.now() - t0) / 20;
  if (sink < 0) process.stderr.write('');
  const out =
    (bm.random ? '**Random-weight model: nothing is ever accepted; the accept rows are placeholders.**\n\n' : '') +
    table(results, { ...o, files: sources.length }) +
    `For reference: joining and splitting the whole 10,000-line file, as a getText()-based provider does per keystroke, costs ${naive.toFixed(2)} ms by itself.\n`;
  process.stdout.write(`\n${out}`);
  if (o.json)
    fs.writeFileSync(
      o.json,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          model: path.basename(model),
          randomWeights: bm.random,
          files: sources.map((f) => f.label),
          options: o,
          results: results.map((r) => ({
            ...r,
            latencies: undefined,
            cpu: undefined,
            latencyP50: percentile(r.latencies, 50),
            latencyP95: percentile(r.latencies, 95),
            cpuP50: percentile(r.cpu, 50),
            cpuP99: percentile(r.cpu, 99),
          })),
        },
        null,
        2,
      ),
    );
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
