import * as assert from 'assert';
import { Group, GROUPS } from '../../bench/quality/holdout';
import { DEFAULT_QUALITY_OPTIONS, measureQuality, QualityReport } from '../../bench/quality/measure';
import { trainedCoderModel } from '../fixtures/coderModel';
import { TRAINED_MODEL_PATH } from '../fixtures/models';

// The quality floor of the project's trained coder model, on held-out files it never saw
// (test/fixtures/quality/holdout/), through the real completion engine and chat path against the
// real llama-server: a small run of bench/quality/run.ts. The floors are set from measured figures
// (bench/RESULTS.md, "Model quality") with room for noise; a change that makes the model, the
// request the engine builds, or its post-processing worse at what users judge fails here.

// Floors: the figures measured on 2026-12-03 (this test's own run, model sha256 1c18447b…) with
// room for noise, about half of each; 0 where the model measured 0 (it cannot do that yet).
// Measured: next-line exact python 2.5 %, js-ts 10.0 %, c-cpp 0.0 %, overall 4.2 %, leading
// characters 7.3 %; FIM exact 0.0 % everywhere, leading characters 1.8 %; chat "write": a closed
// code block in 1 of 3 answers, a code block opened in 3 of 3.

/** Next line, written top-down (empty suffix): first line of the suggestion equals the line. */
const NEXT_LINE_EXACT_FLOOR: Record<Group | 'overall', number> = { python: 0, 'js-ts': 0.05, 'c-cpp': 0, overall: 0.02 };
/** Next line: mean fraction of the line the suggestion gets right from its start. */
const NEXT_LINE_LEADING_FLOOR = 0.035;
/** FIM middle line (the rest of the file as suffix): exact match. */
const FIM_EXACT_FLOOR: Record<Group | 'overall', number> = { python: 0, 'js-ts': 0, 'c-cpp': 0, overall: 0 };
const FIM_LEADING_FLOOR = 0.009;
/** "Write a <Lang> function `f(a)` that …": answers that open a fenced code block (closed or cut off at the token limit). */
const CHAT_WRITE_CODE_OPENED_FLOOR = 0.66;
/** … with a closed block. */
const CHAT_WRITE_CODE_BLOCK_FLOOR = 0.3;
/** … whose text passes the cheap check for the file's language (bench/quality/codeCheck.ts). */
const CHAT_WRITE_LOOKS_LIKE_CODE_FLOOR = 0;

const POSITIONS_PER_GROUP = 40;
const CHAT_QUESTIONS = 6;

const log = (s: string) => process.stderr.write(`      ${s}\n`);
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

describe('model quality floor (trained coder model, held-out files, real engine path)', function () {
  // The whole measure runs in before(): sized for ~70 s on this 2-core machine when it is quiet;
  // the timeout leaves room for one shared with other work (load 10: over 90 s).
  this.timeout(240_000);
  let r: QualityReport;

  before(async function () {
    const model = await trainedCoderModel();
    if (!model) {
      log(`SKIPPED: ${TRAINED_MODEL_PATH} is missing; the quality floor can only be held on the trained model.`);
      this.skip();
    }
    r = await measureQuality({ ...DEFAULT_QUALITY_OPTIONS, model: model!, perGroup: POSITIONS_PER_GROUP, chat: CHAT_QUESTIONS, chatMaxTokens: 256 });
    for (const m of r.lines) {
      log(`${m.mode}: exact ${[...GROUPS, 'overall' as const].map((g) => `${g} ${pct(m.groups[g].exact)}`).join(', ')}; leading characters ${pct(m.groups.overall.leading)}; p50/p95 ${m.groups.overall.p50Ms.toFixed(0)}/${m.groups.overall.p95Ms.toFixed(0)} ms`);
    }
    const w = r.chat.write;
    log(`chat (write, ${w.n}): code block opened ${pct(w.codeOpened)}, closed ${pct(w.codeBlock)}, looks like the language ${pct(w.looksLikeCode)}; (all ${r.chat.all.n}) closed code block ${pct(r.chat.all.codeBlock)}; ${r.wallSeconds.toFixed(0)} s in all`);
  });

  const figures = (mode: string) => r.lines.find((m) => m.mode === mode)!.groups;

  it('next-line exact match and correct leading characters stay above their floors', () => {
    const g = figures('next-line');
    for (const k of [...GROUPS, 'overall' as const]) assert.ok(g[k].exact >= NEXT_LINE_EXACT_FLOOR[k], `next-line exact match, ${k}: ${pct(g[k].exact)} < floor ${pct(NEXT_LINE_EXACT_FLOOR[k])}`);
    assert.ok(g.overall.leading >= NEXT_LINE_LEADING_FLOOR, `next-line leading characters ${pct(g.overall.leading)} < floor ${pct(NEXT_LINE_LEADING_FLOOR)}`);
  });

  it('FIM middle-line exact match and correct leading characters stay above their floors', () => {
    const g = figures('fim');
    for (const k of [...GROUPS, 'overall' as const]) assert.ok(g[k].exact >= FIM_EXACT_FLOOR[k], `FIM middle-line exact match, ${k}: ${pct(g[k].exact)} < floor ${pct(FIM_EXACT_FLOOR[k])}`);
    assert.ok(g.overall.leading >= FIM_LEADING_FLOOR, `FIM leading characters ${pct(g.overall.leading)} < floor ${pct(FIM_LEADING_FLOOR)}`);
  });

  it('chat answers to "write a function" carry a fenced code block that looks like the language', () => {
    const w = r.chat.write;
    assert.ok(w.n > 0, 'no "write" question was asked');
    assert.ok(w.codeOpened >= CHAT_WRITE_CODE_OPENED_FLOOR, `code block opened in ${pct(w.codeOpened)} of ${w.n} answers < floor ${pct(CHAT_WRITE_CODE_OPENED_FLOOR)}`);
    assert.ok(w.codeBlock >= CHAT_WRITE_CODE_BLOCK_FLOOR, `code block in ${pct(w.codeBlock)} of ${w.n} answers < floor ${pct(CHAT_WRITE_CODE_BLOCK_FLOOR)}; first answer:\n${r.chat.results.find((x) => x.kind === 'write')?.answer}`);
    assert.ok(w.looksLikeCode >= CHAT_WRITE_LOOKS_LIKE_CODE_FLOOR, `code that looks like the language in ${pct(w.looksLikeCode)} < floor ${pct(CHAT_WRITE_LOOKS_LIKE_CODE_FLOOR)}`);
  });
});
