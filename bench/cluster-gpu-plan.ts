// Strata's automatic split for the GPU benchmark, as a small CLI bundled into .cluster-gpu/plan.js
// (the GPU machine has the carried node, not the repo's node_modules):
//
//   node plan.js --model M.gguf --ctx 4096 --mode split|auto --rpc-free <bytes>[,<bytes>...] --local-free <bytes>[,...]
//
// prints {"ngl":65,"ts":"33/32","lines":[...],"summary":"..."}: llama.cpp's -ngl and the
// tensor split in llama-bench's a/b form, in llama.cpp's device order (RPC devices first).

import { readGgufHeader } from '../src/core/models/gguf/reader';
import { modelLayout } from '../src/cluster/plan/layout';
import { planSplit, SplitDevice } from '../src/cluster/plan/split';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const model = arg('--model');
  if (!model) throw new Error('--model is required');
  const header = await readGgufHeader(model, { maxArrayItems: 0 });
  const layout = modelLayout(header, { ctx: Number(arg('--ctx') ?? 4096) });
  const devices: SplitDevice[] = [];
  (arg('--rpc-free') ?? '')
    .split(',')
    .filter(Boolean)
    .forEach((b, i) => devices.push({ id: `RPC${i}`, host: `peer${i}`, label: `RPC${i}`, freeBytes: Number(b) }));
  (arg('--local-free') ?? '')
    .split(',')
    .filter(Boolean)
    .forEach((b, i) => devices.push({ id: `CUDA${i}`, host: 'local', label: `CUDA${i}`, freeBytes: Number(b) }));
  const p = planSplit({ layout, devices, mode: arg('--mode') === 'auto' ? 'auto' : 'split', hostFreeBytes: Number(arg('--host-free') ?? 64 * 1024 ** 3) });
  if (!p.fits) throw new Error(p.summary);
  process.stdout.write(`${JSON.stringify({ ngl: p.ngl, ts: p.tensorSplit.join('/'), summary: p.summary, lines: p.lines })}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`plan: ${e.message}\n`);
  process.exit(1);
});
