import { performance } from 'perf_hooks';
import { CompletionEngine, CompletionSettings, DEFAULT_COMPLETION_SETTINGS, percentile } from '../../src/core/completion/completionEngine';
import { TextDocumentLines } from '../../src/core/completion/document';
import { LlamaClient } from '../../src/core/llama/client';
import { documentAt, Group, GROUPS, Position, QualityMode } from './holdout';

// Next-line and FIM middle-line quality through the real completion engine: the request it
// builds (buildFimContext, its /infill fields, streaming with its early stop) and the
// post-processing that decides what ghost text is shown. One engine per mode with the product's
// default settings; its memory is cleared before every position so each answer is the server's.

export interface LineScore {
  /** First line of the suggestion equals the expected line (trailing whitespace ignored). */
  exact: boolean;
  /** Characters of the expected line the suggestion got right from its start, as a fraction. */
  leading: number;
  /** Something was shown and the expected line starts with it: Tab would have helped. */
  useful: boolean;
}

/** Scores a suggestion (undefined: nothing shown) against the rest of the line. */
export function scoreLine(suggestion: string | undefined, expected: string): LineScore {
  const first = (suggestion ?? '').split('\n')[0].trimEnd();
  const want = expected.trimEnd();
  let k = 0;
  while (k < first.length && k < want.length && first[k] === want[k]) k++;
  return { exact: first === want && want !== '', leading: want.length ? k / want.length : 0, useful: first !== '' && want.startsWith(first) };
}

export interface PositionResult extends LineScore {
  group: Group;
  file: string;
  line: number;
  expected: string;
  suggestion?: string;
  ms: number;
}

export interface GroupFigures {
  n: number;
  exact: number;
  leading: number;
  useful: number;
  shown: number;
  p50Ms: number;
  p95Ms: number;
}

export interface ModeFigures {
  mode: QualityMode;
  groups: Record<Group | 'overall', GroupFigures>;
  results: PositionResult[];
}

/**
 * Every position in every mode, the modes in turn at each position (both requests share the
 * prefix: the second finds it in the server's prompt cache, as the next position finds most of
 * it). One engine per mode.
 */
export async function measureLines(
  client: LlamaClient,
  positions: Position[],
  modes: QualityMode[],
  over: Partial<CompletionSettings> = {},
  onProgress?: (done: number) => void,
): Promise<ModeFigures[]> {
  const settings: CompletionSettings = { ...DEFAULT_COMPLETION_SETTINGS, ...over };
  const runs = modes.map((mode) => ({
    mode,
    engine: new CompletionEngine(
      () => client,
      () => settings,
      {
        log: (level, msg) => {
          if (level === 'warn') process.stderr.write(`  [engine] ${msg}\n`);
        },
      },
    ),
    results: [] as PositionResult[],
  }));
  // The engine asks /props and probes /infill once per server: not part of any position's time.
  for (const { engine } of runs) await engine.complete(new TextDocumentLines('x', 'untitled:probe'), { line: 0, character: 1 });
  for (const [k, p] of positions.entries()) {
    for (const { mode, engine, results } of runs) {
      engine.clearCaches();
      const { doc, cursor } = documentAt(p, mode);
      const t0 = performance.now();
      const r = await engine.complete(doc, cursor);
      const ms = performance.now() - t0;
      // After a failure the engine backs off and shows nothing for a while: the figures would lie.
      if (engine.stats.failed > 0) throw new Error(`a completion request failed (${engine.status.snapshot.message}); see the engine's warning above.`);
      results.push({
        group: p.file.group,
        file: p.file.file,
        line: p.line + 1,
        expected: p.expected,
        suggestion: r?.text,
        ms,
        ...scoreLine(r?.text, p.expected),
      });
    }
    onProgress?.(k + 1);
  }
  return runs.map(({ mode, results }) => ({ mode, groups: summarize(results), results }));
}

export function summarize(results: PositionResult[]): Record<Group | 'overall', GroupFigures> {
  const fig = (rs: PositionResult[]): GroupFigures => {
    const n = rs.length;
    const frac = (f: (r: PositionResult) => number) => (n ? rs.reduce((s, r) => s + f(r), 0) / n : NaN);
    const ms = rs.map((r) => r.ms);
    return {
      n,
      exact: frac((r) => Number(r.exact)),
      leading: frac((r) => r.leading),
      useful: frac((r) => Number(r.useful)),
      shown: frac((r) => Number(r.suggestion !== undefined)),
      p50Ms: percentile(ms, 50),
      p95Ms: percentile(ms, 95),
    };
  };
  const out = { overall: fig(results) } as Record<Group | 'overall', GroupFigures>;
  for (const g of GROUPS) out[g] = fig(results.filter((r) => r.group === g));
  return out;
}
