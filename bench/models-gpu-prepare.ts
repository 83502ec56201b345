// Prepares the planner accuracy check for the GPU machine (which has cmake and nvcc but maybe no
// node): writes .models-gpu/ (git-ignored, carried with `run`) holding
//   llama.cpp.tar.xz   the pinned source without docs/media/tests/vocab files (~8 MB),
//   shapes.json + shapes/*.bin   the header bytes and the few data extents of each 32B/70B shape
//                      file; bench/models-gpu/materialize.py turns them back into full-size sparse GGUFs,
//   cases.json         each case's llama-server flags and the planner's prediction for one CUDA GPU.
// Then on the GPU machine: bash bench/models-gpu/run.sh   (see bench/README.md).
//
//   npx tsx bench/models-gpu-prepare.ts [--out .models-gpu]

import * as fs from 'fs';
import * as path from 'path';
import { inspectModel } from '../src/core/models/inspect/modelInfo';
import { planArgs } from '../src/core/models/planner/args';
import { PlannerDevice } from '../src/core/models/planner/devices';
import { KvCacheType } from '../src/core/models/planner/kvCache';
import { estimateMemory, logitsBytes } from '../src/core/models/planner/memoryEstimate';
import { ModelPlan } from '../src/core/models/planner/plan';
import { ShapeName, ShapeQuant } from '../src/core/models/synthetic/shapes';
import { ensureMoeShapeModel, ensureShapeModel } from '../test/fixtures/models';
import { ensureIgnored, ShapeExtents, writeShapeExtents } from './lib/gpuCarry';
import { packLlamaSource } from './lib/packLlamaSource';

const GiB = 1024 ** 3;

export interface GpuCase {
  id: string;
  shape: string;
  ctx: number;
  slots: number;
  flashAttn: boolean;
  kv: KvCacheType;
  /** llama.cpp -ngl; layers + 1 = everything. */
  ngl: number;
  /** Also load it for real (weights are zeros from the sparse file) when it fits the GPU. */
  load: boolean;
}

const CASES: Array<Omit<GpuCase, 'ngl'> & { ngl?: number; shapeName: ShapeName | 'qwen3-coder-30b-a3b'; quant: ShapeQuant }> = [
  { id: '32b-q4km-fa-32k', shapeName: 'qwen2.5-coder-32b', quant: 'Q4_K_M', shape: '', ctx: 32768, slots: 1, flashAttn: true, kv: 'f16', load: true },
  { id: '32b-q4km-nofa-8k', shapeName: 'qwen2.5-coder-32b', quant: 'Q4_K_M', shape: '', ctx: 8192, slots: 1, flashAttn: false, kv: 'f16', load: true },
  { id: '32b-q8-fa-16k-np2-q8kv', shapeName: 'qwen2.5-coder-32b', quant: 'Q8_0', shape: '', ctx: 16384, slots: 2, flashAttn: true, kv: 'q8_0', load: true },
  { id: '70b-q4km-fa-16k', shapeName: 'llama-3.3-70b', quant: 'Q4_K_M', shape: '', ctx: 16384, slots: 1, flashAttn: true, kv: 'f16', load: true },
  { id: '70b-q4km-nofa-4k-np4', shapeName: 'llama-3.3-70b', quant: 'Q4_K_M', shape: '', ctx: 4096, slots: 4, flashAttn: false, kv: 'f16', load: false },
  { id: '70b-q8-fa-8k', shapeName: 'llama-3.3-70b', quant: 'Q8_0', shape: '', ctx: 8192, slots: 1, flashAttn: true, kv: 'f16', load: false },
  { id: '30b-a3b-q4km-fa-32k-np2', shapeName: 'qwen3-coder-30b-a3b', quant: 'Q4_K_M', shape: '', ctx: 32768, slots: 2, flashAttn: true, kv: 'f16', load: true },
  { id: '30b-a3b-q8-nofa-8k', shapeName: 'qwen3-coder-30b-a3b', quant: 'Q8_0', shape: '', ctx: 8192, slots: 1, flashAttn: false, kv: 'f16', load: true },
  { id: '70b-q8-fa-8k-ngl60', shapeName: 'llama-3.3-70b', quant: 'Q8_0', shape: '', ctx: 8192, slots: 1, flashAttn: true, kv: 'f16', ngl: 60, load: false },
];

/** The GPU as the planner sees an H100 (budget only matters for layer split with several GPUs). */
export const H100: PlannerDevice = {
  id: 'CUDA0', name: 'NVIDIA H100 80GB HBM3', kind: 'discrete', budgetBytes: 79 * GiB, totalBytes: 79.6 * GiB,
  bandwidthGBps: 3350, bandwidthSource: 'table', alignment: 128,
};

async function main(): Promise<void> {
  const outArg = process.argv.indexOf('--out');
  const out = path.resolve(outArg > 0 ? process.argv[outArg + 1] : '.models-gpu');
  fs.mkdirSync(path.join(out, 'shapes'), { recursive: true });
  ensureIgnored(out);

  // 1. llama.cpp source, as small as CMake allows; entries start with "llama.cpp/".
  const tarball = path.join(out, 'llama.cpp.tar.xz');
  await packLlamaSource(tarball, { topDir: 'llama.cpp', keep: true });

  // 2. Shape files as header + data extents.
  const shapes: Record<string, ShapeExtents> = {};
  const cases: Array<GpuCase & { args: string[]; predicted: unknown }> = [];
  for (const c of CASES) {
    const file = c.shapeName === 'qwen3-coder-30b-a3b' ? await ensureMoeShapeModel(c.quant) : await ensureShapeModel(c.shapeName, c.quant);
    const name = `${c.shapeName}-${c.quant}.gguf`;
    shapes[name] ??= await writeShapeExtents(file, name, out);
    const info = await inspectModel(file);
    const ngl = c.ngl ?? info.layers + 1;
    const est = estimateMemory(info, [H100], {
      ctx: c.ctx, slots: c.slots, unified: true, typeK: c.kv, typeV: c.kv, flashAttn: c.flashAttn, ngl, nBatch: 2048, nUbatch: 512,
    });
    const plan = {
      ctx: c.ctx, slots: c.slots, unified: true, gpuLayers: ngl, devices: est.devices, flashAttn: c.flashAttn,
      typeK: c.kv, typeV: c.kv, nBatch: 2048, nUbatch: 512, mmap: true, cacheRamMiB: 0,
    } as unknown as ModelPlan;
    const args = planArgs(plan).filter((a, i, all) => a !== '--fit' && all[i - 1] !== '--fit');
    cases.push({
      ...c, shape: name, ngl, args,
      predicted: {
        device: { weights: est.devices[0].weights, kv: est.devices[0].kv, compute: est.devices[0].compute },
        host: { weights: est.host.weights, kv: est.host.kv, compute: est.host.compute, output: logitsBytes(info, c.slots) },
      },
    });
  }
  fs.writeFileSync(path.join(out, 'shapes.json'), JSON.stringify(shapes, null, 1));
  fs.writeFileSync(path.join(out, 'cases.json'), JSON.stringify(cases, null, 1));
  const bytes = fs.readdirSync(path.join(out, 'shapes')).reduce((s, f) => s + fs.statSync(path.join(out, 'shapes', f)).size, 0) + fs.statSync(tarball).size;
  console.log(`wrote ${out}: ${cases.length} cases, ${Object.keys(shapes).length} shapes, ${(bytes / 1024 ** 2).toFixed(1)} MiB to carry`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
