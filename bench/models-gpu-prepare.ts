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
import { PlannerDevice } from '../src/core/models/planner/devices';
import { ensureIgnored } from './lib/gpuCarry';
import { CaseSpec, prepareCases } from './lib/gpuCases';
import { packLlamaSource } from './lib/packLlamaSource';

const GiB = 1024 ** 3;

const CASES: CaseSpec[] = [
  { id: '32b-q4km-fa-32k', shapeName: 'qwen2.5-coder-32b', quant: 'Q4_K_M', ctx: 32768, slots: 1, flashAttn: true, kv: 'f16', load: true },
  { id: '32b-q4km-nofa-8k', shapeName: 'qwen2.5-coder-32b', quant: 'Q4_K_M', ctx: 8192, slots: 1, flashAttn: false, kv: 'f16', load: true },
  { id: '32b-q8-fa-16k-np2-q8kv', shapeName: 'qwen2.5-coder-32b', quant: 'Q8_0', ctx: 16384, slots: 2, flashAttn: true, kv: 'q8_0', load: true },
  { id: '70b-q4km-fa-16k', shapeName: 'llama-3.3-70b', quant: 'Q4_K_M', ctx: 16384, slots: 1, flashAttn: true, kv: 'f16', load: true },
  { id: '70b-q4km-nofa-4k-np4', shapeName: 'llama-3.3-70b', quant: 'Q4_K_M', ctx: 4096, slots: 4, flashAttn: false, kv: 'f16', load: false },
  { id: '70b-q8-fa-8k', shapeName: 'llama-3.3-70b', quant: 'Q8_0', ctx: 8192, slots: 1, flashAttn: true, kv: 'f16', load: false },
  { id: '30b-a3b-q4km-fa-32k-np2', shapeName: 'qwen3-coder-30b-a3b', quant: 'Q4_K_M', ctx: 32768, slots: 2, flashAttn: true, kv: 'f16', load: true },
  { id: '30b-a3b-q8-nofa-8k', shapeName: 'qwen3-coder-30b-a3b', quant: 'Q8_0', ctx: 8192, slots: 1, flashAttn: false, kv: 'f16', load: true },
  { id: '70b-q8-fa-8k-ngl60', shapeName: 'llama-3.3-70b', quant: 'Q8_0', ctx: 8192, slots: 1, flashAttn: true, kv: 'f16', ngl: 60, load: false },
];

/** The GPU as the planner sees an H100 (budget only matters for layer split with several GPUs). */
export const H100: PlannerDevice = {
  id: 'CUDA0',
  name: 'NVIDIA H100 80GB HBM3',
  kind: 'discrete',
  budgetBytes: 79 * GiB,
  totalBytes: 79.6 * GiB,
  bandwidthGBps: 3350,
  bandwidthSource: 'table',
  alignment: 128,
};

async function main(): Promise<void> {
  const outArg = process.argv.indexOf('--out');
  const out = path.resolve(outArg > 0 ? process.argv[outArg + 1] : '.models-gpu');
  fs.mkdirSync(path.join(out, 'shapes'), { recursive: true });
  ensureIgnored(out);

  // 1. llama.cpp source, as small as CMake allows; entries start with "llama.cpp/".
  const tarball = path.join(out, 'llama.cpp.tar.xz');
  await packLlamaSource(tarball, { topDir: 'llama.cpp', keep: true });

  // 2. Shape files as header + data extents, and the planner's prediction for one H100.
  const { cases, shapes } = await prepareCases(CASES, H100, out);
  fs.writeFileSync(path.join(out, 'shapes.json'), JSON.stringify(shapes, null, 1));
  fs.writeFileSync(path.join(out, 'cases.json'), JSON.stringify(cases, null, 1));
  const bytes = fs.readdirSync(path.join(out, 'shapes')).reduce((s, f) => s + fs.statSync(path.join(out, 'shapes', f)).size, 0) + fs.statSync(tarball).size;
  console.log(`wrote ${out}: ${cases.length} cases, ${Object.keys(shapes).length} shapes, ${(bytes / 1024 ** 2).toFixed(1)} MiB to carry`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
