// The planner's accuracy table: predicted vs llama.cpp, per component.
//
//   npx tsx bench/models-accuracy.ts                 CPU here: tiny models loaded for real, 32B/70B shapes by dry run
//   npx tsx bench/models-accuracy.ts --gpu <gpu-results.json> [--cases .models-gpu/cases.json] [--device CUDA0]
//                                                    the GPU machine's results (bench/models-gpu/run.sh;
//                                                    --device Vulkan0 for bench/vulkan-gpu.sh's memory phase)

import * as fs from 'fs';
import { parseLoadLog, sumBuffers } from '../src/core/models/planner/loadLog';
import { ensureMoeShapeModel, ensureShapeModel, ensureTinyModel } from '../test/fixtures/models';
import { AccuracyCase, measureCase, relError } from '../test/integration/models/accuracy';

const MiB = 1024 * 1024;
const fmt = (n: number) => (n < 100 * MiB ? (n / MiB).toFixed(2) : (n / MiB).toFixed(0));
const pct = (p: number, a: number, floor: number) => `${(relError(p, a, floor) * 100).toFixed(1)}%`;

async function cpu(): Promise<void> {
  const tiny = await ensureTinyModel();
  const tiny64 = await ensureTinyModel({ embd: 128, heads: 2, kvHeads: 1, ffn: 384 });
  const q32 = await ensureShapeModel('qwen2.5-coder-32b', 'Q4_K_M');
  const q32q8 = await ensureShapeModel('qwen2.5-coder-32b', 'Q8_0');
  const l70 = await ensureShapeModel('llama-3.3-70b', 'Q4_K_M');
  const l70q8 = await ensureShapeModel('llama-3.3-70b', 'Q8_0');
  const moe = await ensureMoeShapeModel('Q4_K_M');
  const cases: AccuracyCase[] = [
    { label: 'tiny Qwen2 F16, FA, 2k, 1 slot', model: tiny, ctx: 2048, slots: 1, flashAttn: true, mode: 'load' },
    { label: 'tiny Qwen2 F16, no FA, 4k, 1 slot', model: tiny, ctx: 4096, slots: 1, flashAttn: false, mode: 'load' },
    { label: 'tiny Qwen2 F16, FA, 8k, 4 slots', model: tiny, ctx: 8192, slots: 4, flashAttn: true, mode: 'load' },
    { label: 'tiny Qwen2 (head 64), FA, q8_0 KV', model: tiny64, ctx: 4096, slots: 2, flashAttn: true, kv: 'q8_0', mode: 'load' },
    { label: 'Qwen2.5-Coder-32B Q4_K_M, FA, 32k', model: q32, ctx: 32768, slots: 1, flashAttn: true, mode: 'fit' },
    { label: 'Qwen2.5-Coder-32B Q4_K_M, no FA, 8k', model: q32, ctx: 8192, slots: 1, flashAttn: false, mode: 'fit' },
    { label: 'Qwen2.5-Coder-32B Q8_0, FA, 16k, 2 slots, q8_0 KV', model: q32q8, ctx: 16384, slots: 2, flashAttn: true, kv: 'q8_0', mode: 'fit' },
    { label: 'Llama-3.3-70B Q4_K_M, FA, 16k', model: l70, ctx: 16384, slots: 1, flashAttn: true, mode: 'fit' },
    { label: 'Llama-3.3-70B Q4_K_M, no FA, 4k, 4 slots', model: l70, ctx: 4096, slots: 4, flashAttn: false, mode: 'fit' },
    { label: 'Llama-3.3-70B Q8_0, FA, 8k', model: l70q8, ctx: 8192, slots: 1, flashAttn: true, mode: 'fit' },
    { label: 'Qwen3-Coder-30B-A3B Q4_K_M (MoE), FA, 32k, 2 slots', model: moe, ctx: 32768, slots: 2, flashAttn: true, mode: 'fit' },
    { label: 'Qwen3-Coder-30B-A3B Q4_K_M (MoE), no FA, 8k', model: moe, ctx: 8192, slots: 1, flashAttn: false, mode: 'fit' },
  ];
  console.log('| model, config (CPU backend) | source | weights MiB pred / llama.cpp | KV MiB | compute MiB | worst error |');
  console.log('|---|---|---|---|---|---|');
  for (const c of cases) {
    const r = await measureCase(c);
    const floor = c.mode === 'fit' ? MiB : 0.01 * MiB;
    const errs = (['weights', 'kv', 'compute'] as const).map((k) => Math.abs(relError(r.predicted[k], r.actual[k], floor)));
    const cell = (k: 'weights' | 'kv' | 'compute') => `${fmt(r.predicted[k])} / ${fmt(r.actual[k])}`;
    console.log(
      `| ${c.label} | ${c.mode === 'fit' ? 'dry run (--fit)' : 'load log'} | ${cell('weights')} | ${cell('kv')} | ${cell('compute')} | ${(Math.max(...errs) * 100).toFixed(1)}% |`,
    );
  }
}

interface GpuCaseFile {
  id: string;
  predicted: { device: { weights: number; kv: number; compute: number }; host: { weights: number; compute: number; output: number } };
}

function gpu(resultsFile: string, casesFile: string, device: string): void {
  const cases = JSON.parse(fs.readFileSync(casesFile, 'utf8')) as GpuCaseFile[];
  const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as Array<{
    id: string;
    dry?: { ok: boolean; lines: string[] };
    load?: { ok: boolean; lines: string[] };
  }>;
  // The device's buffers ("CUDA0", "Vulkan0") and its backend's pinned host buffer ("CUDA_Host", "Vulkan_Host").
  const own = new RegExp(`^${device}$`);
  const hostCompute = new RegExp(`^(${device.replace(/\d+$/, '')}_Host|CPU)$`);
  console.log(`| case (${device}) | source | weights MiB pred / llama.cpp | KV MiB | compute MiB | host compute MiB | worst error |`);
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const c = cases.find((x) => x.id === r.id);
    if (!c) continue;
    const p = c.predicted;
    for (const [source, run] of [
      ['dry run', r.dry],
      ['load log', r.load],
    ] as const) {
      if (!run) continue;
      if (!run.ok) {
        console.log(`| ${r.id} | ${source} | failed: ${run.lines.filter((l) => /error|fail|memory/i.test(l)).slice(-1)[0] ?? 'no numbers'} | | | | |`);
        continue;
      }
      const log = parseLoadLog(run.lines.join('\n'));
      let a: { weights: number; kv: number; compute: number; hostCompute: number };
      if (source === 'dry run') {
        const dev = log.breakdown.find((b) => b.name === device || b.name.startsWith(`${device} `));
        const host = log.breakdown.find((b) => b.name === 'Host');
        if (!dev || !host) continue;
        a = { weights: dev.model, kv: dev.context, compute: dev.compute, hostCompute: host.compute };
      } else {
        a = {
          weights: sumBuffers(log, 'model', own),
          kv: sumBuffers(log, 'kv', own),
          compute: sumBuffers(log, 'compute', own),
          hostCompute: sumBuffers(log, 'compute', hostCompute),
        };
      }
      const floor = source === 'dry run' ? MiB : 0.01 * MiB;
      const errs = [relError(p.device.weights, a.weights, floor), relError(p.device.kv, a.kv, floor), relError(p.device.compute, a.compute, floor)];
      const worst = errs.reduce((m, e) => (Math.abs(e) > Math.abs(m) ? e : m), 0);
      console.log(
        `| ${r.id} | ${source} | ${fmt(p.device.weights)} / ${fmt(a.weights)} | ${fmt(p.device.kv)} / ${fmt(a.kv)} | ${fmt(p.device.compute)} / ${fmt(a.compute)} (${pct(p.device.compute, a.compute, floor)}) | ${fmt(p.host.compute)} / ${fmt(a.hostCompute)} | ${(worst * 100).toFixed(1)}% |`,
      );
    }
  }
}

const gi = process.argv.indexOf('--gpu');
if (gi > 0) {
  const ci = process.argv.indexOf('--cases');
  const di = process.argv.indexOf('--device');
  gpu(process.argv[gi + 1], ci > 0 ? process.argv[ci + 1] : '.models-gpu/cases.json', di > 0 ? process.argv[di + 1] : 'CUDA0');
} else {
  cpu().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
