import { percentile, ReuseFeatures } from '../../src/core/completion/completionEngine';

// The completion benchmark's modes, what one run of a mode counts, and the table it prints.

export interface Mode {
  name: string;
  reuse: ReuseFeatures;
  /** The user also accepts the matching words of a suggestion that does not match as a whole. */
  acceptWords: boolean;
  /** Extra llama-server flags for this mode's server. */
  serverArgs?: string[];
}

export interface Result {
  mode: string;
  /** Keys pressed: typed characters, Enter, Backspace, Tab and accept-word presses. */
  keys: number;
  typedSeconds: number;
  wallSeconds: number;
  requests: number;
  aborted: number;
  answered: number;
  failed: number;
  warmUps: number;
  prefetches: number;
  /** Suggestions shown with no request: typed through, or the answer cache. */
  fromMemory: number;
  /** Of those, the rest of a suggestion the user is typing through. */
  typedThrough: number;
  shown: number;
  /** Tab presses (whole suggestions accepted). */
  accepted: number;
  /** Runs of accept-next-word presses. */
  acceptedWords: number;
  /** Keys pressed to accept (Tab, accept-word). */
  acceptKeys: number;
  /** Keys the accepted text would have taken to type, minus acceptKeys. */
  savedKeys: number;
  /** Keys the regions take to type with no help and no typos. */
  neededKeys: number;
  promptEvaluated: number;
  promptReused: number;
  predicted: number;
  latencies: number[];
  cpuKeys: number;
  cpu: number[];
  noiseP50: number;
  noiseP99: number;
  log: string[];
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export interface TableContext {
  files: number;
  regions: number;
  debounce: number;
  maxTokens: number;
  ctx: number;
  serverArgs: string[];
}

export function table(results: Result[], o: TableContext): string {
  const per100 = (r: Result, v: number) => (100 * v) / r.keys;
  const rows: [string, (r: Result) => string][] = [
    ['keystrokes saved by accepting', (r) => fmt(per100(r, r.savedKeys), 1)],
    ['… as a share of the keys the text takes to type', (r) => `${fmt((100 * r.savedKeys) / r.neededKeys, 1)} %`],
    ['suggestions shown', (r) => fmt(per100(r, r.shown), 1)],
    ['accepted whole (Tab)', (r) => fmt(per100(r, r.accepted), 1)],
    ['accepted in part, word by word (runs of Ctrl+Right)', (r) => fmt(per100(r, r.acceptedWords), 1)],
    ['typed-through hits served from memory', (r) => fmt(per100(r, r.typedThrough), 1)],
    ['answered from memory in all (typed through or the answer cache)', (r) => fmt(per100(r, r.fromMemory), 1)],
    ['completion requests sent to the server', (r) => fmt(per100(r, r.requests), 1)],
    ['… cancelled by the next keystroke', (r) => fmt(per100(r, r.aborted), 1)],
    ['… answered in time', (r) => fmt(per100(r, r.answered), 1)],
    ['warm-up + prefetch requests', (r) => fmt(per100(r, r.warmUps + r.prefetches), 1)],
    ['prompt tokens evaluated by the server', (r) => fmt(per100(r, r.promptEvaluated))],
    ['prompt tokens reused from its KV cache', (r) => fmt(per100(r, r.promptReused))],
    ['prompt tokens evaluated per answer', (r) => (r.answered + r.fromMemory ? fmt(r.promptEvaluated / (r.answered + r.fromMemory)) : 'no answer')],
    ['tokens generated', (r) => fmt(per100(r, r.predicted))],
    ['latency p50 / p95, answered requests (ms)', (r) => `${fmt(percentile(r.latencies, 50))} / ${fmt(percentile(r.latencies, 95))}`],
    ['prefill time of those tokens at 300 tok/s (s)¹', (r) => fmt(per100(r, r.promptEvaluated / 300), 1)],
    [
      `extension main-thread time per completion p50 / p99 / max (ms), 10,000-line file²`,
      (r) => `${fmt(percentile(r.cpu, 50), 2)} / ${fmt(percentile(r.cpu, 99), 2)} / ${fmt(Math.max(...r.cpu), 2)}`,
    ],
    ['same-time fixed ~0.1 ms workload p50 / p99 (machine noise)³', (r) => `${fmt(r.noiseP50, 2)} / ${fmt(r.noiseP99, 2)}`],
  ];
  const head = `| per 100 keystrokes pressed | ${results.map((r) => r.mode).join(' | ')} |\n|---|${results.map(() => '---:').join('|')}|`;
  const body = rows.map(([label, f]) => `| ${label} | ${results.map(f).join(' | ')} |`).join('\n');
  const r0 = results[0];
  return (
    `${head}\n${body}\n\n${results.map((r) => `${r.mode}: ${fmt(r.keys)} keys pressed`).join('; ')} for text that takes ${fmt(r0.neededKeys)} keys to type ` +
    `(${fmt(r0.typedSeconds / 60, 1)} min of simulated typing in the first mode) over ${o.files} files × ${o.regions} regions; ` +
    `debounce ${o.debounce} ms; n_predict ${o.maxTokens}; llama-server -c ${o.ctx} -np 1${o.serverArgs.length ? ' ' + o.serverArgs.join(' ') : ''}; wall time ${results.map((r) => `${r.mode} ${fmt(r.wallSeconds)} s`).join(', ')}.\n` +
    `¹ what that prefill would take a dense 32B model on Strix Halo at an assumed 300 tok/s (not measured: a few hundred tok/s is the guess); 100 keystrokes take ~${fmt((r0.typedSeconds / r0.keys) * 100)} s to type. Tokens cut short by a cancel are counted (llama-server /metrics).\n` +
    `² wall time of the engine's synchronous work per completion attempt (memory lookups, context, hashing, request serialization and send, streamed-answer parsing, post-processing), ${fmt(r0.cpu.length)} attempts while typing ${fmt(r0.cpuKeys)} keys at line 5,000 of a 10,000-line C++ file; an upper bound of CPU time.\n` +
    '³ the same loop of arithmetic timed between the attempts: how much waiting for a core (other work on the machine) inflates p99 here.\n'
  );
}
