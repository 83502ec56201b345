import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { benchModel } from '../../test/fixtures/coderModel';
import { ChatFigures } from './chatQuality';
import { GROUPS } from './holdout';
import { GroupFigures } from './lineQuality';
import { DEFAULT_QUALITY_OPTIONS, measureQuality, QualityOptions, QualityReport } from './measure';

// Quality floor of a completion/chat model on held-out files it never saw, through the real
// engine path. See bench/README.md ("Model quality").
//
//   npx tsx bench/quality/run.ts [--model file.gguf] [--per-group 100] [--run 5] [--chat 12] [--seed 1]
//       [--ctx N] [--server-args "-t 1"] [--chat-max-tokens 384] [--modes next-line,fim]
//       [--json out.json]
//
// Default model: test/fixtures/model/strata-test-coder.gguf; when it is missing, the tiny
// random-weight model, with a warning: its figures are placeholders.

function parseArgs(argv: string[]): { o: Omit<QualityOptions, 'model'>; model?: string; json?: string } {
  const o = { ...DEFAULT_QUALITY_OPTIONS };
  let model: string | undefined;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value (see the header of bench/quality/run.ts)`);
      return x;
    };
    if (a === '--model') model = v();
    else if (a === '--per-group') o.perGroup = Number(v());
    else if (a === '--run') o.run = Number(v());
    else if (a === '--chat') o.chat = Number(v());
    else if (a === '--seed') o.seed = Number(v());
    else if (a === '--ctx') o.ctx = Number(v());
    else if (a === '--server-args') o.serverArgs = v().split(' ').filter(Boolean);
    else if (a === '--chat-max-tokens') o.chatMaxTokens = Number(v());
    else if (a === '--modes')
      o.modes = v()
        .split(',')
        .map((m) => {
          if (m !== 'next-line' && m !== 'fim') throw new Error(`unknown mode ${m} (next-line, fim)`);
          return m;
        });
    else if (a === '--json') json = v();
    else throw new Error(`unknown argument ${a} (see the header of bench/quality/run.ts)`);
  }
  return { o, model, json };
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : '–');
const ms = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');

function linesTable(r: QualityReport): string {
  const cols = [...GROUPS, 'overall'] as const;
  const rows: string[] = [];
  const label: Record<string, string> = { 'next-line': 'next line (top-down, empty suffix)', fim: 'FIM middle line (rest of file as suffix)' };
  for (const m of r.lines) {
    const g = (k: (typeof cols)[number]) => m.groups[k];
    const row = (name: string, f: (x: GroupFigures) => string) => rows.push(`| ${label[m.mode]}: ${name} | ${cols.map((k) => f(g(k))).join(' | ')} |`);
    row('exact match', (x) => pct(x.exact));
    row('correct leading characters', (x) => pct(x.leading));
    row('useful (shown, a prefix of the line)', (x) => pct(x.useful));
    row('anything shown', (x) => pct(x.shown));
    row('latency p50 / p95 (ms)', (x) => `${ms(x.p50Ms)} / ${ms(x.p95Ms)}`);
  }
  const n = r.lines[0]?.groups;
  const head = `| positions | ${cols.map((k) => (n ? `${k} (n=${n[k].n})` : k)).join(' | ')} |\n|---|${cols.map(() => '---:').join('|')}|`;
  return `${head}\n${rows.join('\n')}`;
}

function chatTable(r: QualityReport): string {
  const kinds: [string, ChatFigures][] = [
    ['write a function', r.chat.write],
    ['explain a function', r.chat.explain],
    ['all', r.chat.all],
  ];
  const rows: [string, (f: ChatFigures) => string][] = [
    ['questions', (f) => String(f.n)],
    ['answer has a fenced code block (closed)', (f) => pct(f.codeBlock)],
    ["… tagged with the file's language", (f) => pct(f.tagged)],
    ['… whose text looks like that language (cheap check)', (f) => pct(f.looksLikeCode)],
    ['answer opens a code block (closed, or cut off at the token limit)', (f) => pct(f.codeOpened)],
    ['answer names the function', (f) => pct(f.namesFunction)],
    ['answer tokens, mean', (f) => (Number.isFinite(f.meanTokens) ? f.meanTokens.toFixed(0) : '–')],
    ['answer time p50 (ms)', (f) => ms(f.p50Ms)],
  ];
  return (
    `| chat | ${kinds.map(([k]) => k).join(' | ')} |\n|---|${kinds.map(() => '---:').join('|')}|\n` +
    rows.map(([name, f]) => `| ${name} | ${kinds.map(([, x]) => f(x)).join(' | ')} |`).join('\n')
  );
}

async function main(): Promise<void> {
  const { o, model: explicit, json } = parseArgs(process.argv.slice(2));
  const model = await benchModel(explicit);
  const log = (m: string) => process.stderr.write(`${m}\n`);
  log(`model ${model.path}${model.random ? ' (RANDOM WEIGHTS: placeholder figures)' : ''}`);
  const r = await measureQuality({ ...o, model: model.path, log });
  const note = model.random ? '\n**Random-weight model: these figures are placeholders, not a measurement of anything a user judges.**\n' : '';
  const out =
    `${note}\n${linesTable(r)}\n\n${chatTable(r)}\n\nmodel ${path.basename(r.model)}${r.modelName ? ` (${r.modelName})` : ''}; llama-server -c ${r.ctx} -np 1 ${o.serverArgs.join(' ')}; ` +
    `${o.perGroup} positions per group in runs of ${o.run} consecutive lines, seed ${o.seed}; chat: ${o.chat} questions, temperature ${o.chatTemperature}, at most ${o.chatMaxTokens} tokens; wall time ${r.wallSeconds.toFixed(0)} s on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}.\n`;
  process.stdout.write(out);
  if (json) {
    // All positions' results, and a few whole chat answers as samples (the rest cut short).
    const chat = r.chat.results.map((c, i) => (i < 6 ? c : { ...c, answer: c.answer.slice(0, 300) }));
    fs.writeFileSync(
      json,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}`,
          randomWeights: model.random,
          ...r,
          chat: { ...r.chat, results: chat },
        },
        null,
        1,
      ),
    );
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
