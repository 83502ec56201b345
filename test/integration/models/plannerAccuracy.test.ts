import * as assert from 'assert';
import { ensureMoeShapeModel, ensureShapeModel, ensureTinyModel } from '../../fixtures/models';
import { AccuracyCase, AccuracyResult, formatRow, measureCase, relError } from './accuracy';

// The planner's numbers against what the real llama-server allocates (CPU build), per component:
// weights, KV cache, compute buffers, logits. Goal and gate: within 5 %. Tiny models are loaded
// for real; the 32B/70B shape files are measured by llama.cpp's own no-alloc dry run (--fit),
// which needs no memory. The GPU side is checked on the GPU machine (bench/models-accuracy-gpu.sh).

const MiB = 1024 * 1024;
const TOLERANCE = 0.05;

describe('memory planner vs llama.cpp (CPU)', function () {
  this.timeout(300_000);
  const results: AccuracyResult[] = [];
  let tiny: string;
  let tinyHead64: string;
  let tinyUntied: string;

  before(async () => {
    tiny = await ensureTinyModel();
    // Head size 64 so that a quantized KV cache takes llama.cpp's Hadamard-rotation path.
    tinyHead64 = await ensureTinyModel({ embd: 128, heads: 2, kvHeads: 1, ffn: 384 });
    tinyUntied = await ensureTinyModel({ tiedEmbeddings: false, layers: 6 });
  });

  after(() => {
    if (!results.length) return;
    console.log('\n    predicted/actual MiB (error):');
    for (const r of results) console.log(`    ${formatRow(r)}`);
  });

  const cases: Array<() => AccuracyCase> = [
    () => ({ label: 'tiny, FA, 2k ctx, 1 slot', model: tiny, ctx: 2048, slots: 1, flashAttn: true, mode: 'load' }),
    () => ({ label: 'tiny, no FA, 4k ctx, 1 slot', model: tiny, ctx: 4096, slots: 1, flashAttn: false, mode: 'load' }),
    () => ({ label: 'tiny, FA, 8k ctx, 4 slots unified', model: tiny, ctx: 8192, slots: 4, flashAttn: true, mode: 'load' }),
    () => ({ label: 'tiny, no FA, 8k ctx, 2 slots split', model: tiny, ctx: 8192, slots: 2, unified: false, flashAttn: false, mode: 'load' }),
    () => ({ label: 'tiny, FA, ub 1024', model: tiny, ctx: 4096, slots: 1, flashAttn: true, nUbatch: 1024, mode: 'load' }),
    () => ({ label: 'tiny head 64, FA, q8_0 KV', model: tinyHead64, ctx: 4096, slots: 2, flashAttn: true, kv: 'q8_0', mode: 'load' }),
    () => ({ label: 'tiny head 64, FA, q4_0 KV', model: tinyHead64, ctx: 8192, slots: 1, flashAttn: true, kv: 'q4_0', mode: 'load' }),
    () => ({ label: 'tiny untied, 6 layers, no FA', model: tinyUntied, ctx: 2048, slots: 1, flashAttn: false, mode: 'load' }),
  ];

  // Labels are known before the models exist (they are made in before()).
  const labels = [
    'tiny, FA, 2k ctx, 1 slot',
    'tiny, no FA, 4k ctx, 1 slot',
    'tiny, FA, 8k ctx, 4 slots unified',
    'tiny, no FA, 8k ctx, 2 slots split',
    'tiny, FA, ub 1024',
    'tiny head 64, FA, q8_0 KV',
    'tiny head 64, FA, q4_0 KV',
    'tiny untied, 6 layers, no FA',
  ];
  cases.forEach((make, i) => {
    it(`matches within 5 %: ${labels[i]}`, async () => {
      const r = await measureCase(make());
      results.push(r);
      for (const k of ['weights', 'kv', 'compute', 'output'] as const) {
        const p = r.predicted[k];
        const a = r.actual[k];
        if (p === undefined || a === undefined) continue;
        assert.ok(a > 0 || p === 0, `${k}: llama.cpp reported nothing (log format changed?)`);
        // The log prints MiB with 2 decimals: allow that rounding on tiny buffers.
        const err = relError(p, a, 0.01 * MiB);
        assert.ok(
          Math.abs(err) <= TOLERANCE,
          `${k}: predicted ${(p / MiB).toFixed(2)} MiB, llama.cpp ${(a / MiB).toFixed(2)} MiB (${(err * 100).toFixed(1)} %)`,
        );
      }
    });
  });

  // Shapes of the real 32B / 70B models: weights and KV are the bulk of what a user plans for.
  const shapeCases: Array<[string, () => Promise<AccuracyCase>]> = [
    [
      'Qwen2.5-Coder-32B Q4_K_M, FA, 16k ctx, 2 slots',
      async () => ({
        label: '32B Q4_K_M FA 16k np2',
        model: await ensureShapeModel('qwen2.5-coder-32b', 'Q4_K_M'),
        ctx: 16384,
        slots: 2,
        flashAttn: true,
        mode: 'fit',
      }),
    ],
    [
      'Llama-3.3-70B Q8_0, no FA, 8k ctx, 1 slot',
      async () => ({
        label: '70B Q8_0 noFA 8k np1',
        model: await ensureShapeModel('llama-3.3-70b', 'Q8_0'),
        ctx: 8192,
        slots: 1,
        flashAttn: false,
        mode: 'fit',
      }),
    ],
    [
      'Qwen3-Coder-30B-A3B (MoE) Q4_K_M, FA, 16k ctx, 2 slots',
      async () => ({ label: '30B-A3B MoE Q4_K_M FA 16k np2', model: await ensureMoeShapeModel('Q4_K_M'), ctx: 16384, slots: 2, flashAttn: true, mode: 'fit' }),
    ],
    [
      'Llama-3.3-70B Q4_K_M, FA, q8_0 KV, 32k ctx',
      async () => ({
        label: '70B Q4_K_M FA q8_0-KV 32k',
        model: await ensureShapeModel('llama-3.3-70b', 'Q4_K_M'),
        ctx: 32768,
        slots: 1,
        flashAttn: true,
        kv: 'q8_0',
        mode: 'fit',
      }),
    ],
  ];
  for (const [title, make] of shapeCases) {
    it(`matches within 5 % (dry run): ${title}`, async () => {
      const r = await measureCase(await make());
      results.push(r);
      for (const k of ['weights', 'kv', 'compute'] as const) {
        // The breakdown table truncates to whole MiB.
        const err = relError(r.predicted[k], r.actual[k], MiB);
        assert.ok(
          Math.abs(err) <= TOLERANCE,
          `${k}: predicted ${(r.predicted[k] / MiB).toFixed(0)} MiB, llama.cpp ${(r.actual[k] / MiB).toFixed(0)} MiB (${(err * 100).toFixed(1)} %)`,
        );
      }
    });
  }
});
