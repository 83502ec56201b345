import { inspectModel } from '../../src/core/models/inspect/modelInfo';
import { planArgs } from '../../src/core/models/planner/args';
import { PlannerDevice } from '../../src/core/models/planner/devices';
import { KvCacheType } from '../../src/core/models/planner/kvCache';
import { estimateMemory, logitsBytes } from '../../src/core/models/planner/memoryEstimate';
import { ModelPlan } from '../../src/core/models/planner/plan';
import { ShapeName, ShapeQuant } from '../../src/core/models/synthetic/shapes';
import { ensureMoeShapeModel, ensureShapeModel } from '../../test/fixtures/models';
import { ShapeExtents, writeShapeExtents } from './gpuCarry';

// The planner-accuracy cases both GPU prepare scripts carry (bench/models-gpu-prepare.ts for CUDA0,
// bench/vulkan-gpu-prepare.ts for Vulkan0): each case's llama-server flags and what the planner
// predicts for one GPU, which bench/models-gpu/measure.py then asks llama.cpp about.

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

export type CaseSpec = Omit<GpuCase, 'ngl' | 'shape'> & { ngl?: number; shapeName: ShapeName | 'qwen3-coder-30b-a3b'; quant: ShapeQuant };

export interface PreparedCase extends GpuCase {
  args: string[];
  predicted: {
    device: { weights: number; kv: number; compute: number };
    host: { weights: number; kv: number; compute: number; output: number };
  };
}

/**
 * For each spec: the shape file's header + extents into `dir` (once per shape; gzip: see
 * writeShapeExtents) and the planner's
 * prediction with the whole model on `device`. Returns cases.json's and shapes.json's contents.
 */
export async function prepareCases(
  specs: readonly CaseSpec[],
  device: PlannerDevice,
  dir: string,
  opts: { gzip?: boolean } = {},
): Promise<{ cases: PreparedCase[]; shapes: Record<string, ShapeExtents> }> {
  const shapes: Record<string, ShapeExtents> = {};
  const cases: PreparedCase[] = [];
  for (const c of specs) {
    const file = c.shapeName === 'qwen3-coder-30b-a3b' ? await ensureMoeShapeModel(c.quant) : await ensureShapeModel(c.shapeName, c.quant);
    const name = `${c.shapeName}-${c.quant}.gguf`;
    shapes[name] ??= await writeShapeExtents(file, name, dir, opts);
    const info = await inspectModel(file);
    const ngl = c.ngl ?? info.layers + 1;
    const est = estimateMemory(info, [device], {
      ctx: c.ctx,
      slots: c.slots,
      unified: true,
      typeK: c.kv,
      typeV: c.kv,
      flashAttn: c.flashAttn,
      ngl,
      nBatch: 2048,
      nUbatch: 512,
    });
    const plan = {
      ctx: c.ctx,
      slots: c.slots,
      unified: true,
      gpuLayers: ngl,
      devices: est.devices,
      flashAttn: c.flashAttn,
      typeK: c.kv,
      typeV: c.kv,
      nBatch: 2048,
      nUbatch: 512,
      mmap: true,
      cacheRamMiB: 0,
    } as unknown as ModelPlan;
    const args = planArgs(plan).filter((a, i, all) => a !== '--fit' && all[i - 1] !== '--fit');
    cases.push({
      ...c,
      shape: name,
      ngl,
      args,
      predicted: {
        device: { weights: est.devices[0].weights, kv: est.devices[0].kv, compute: est.devices[0].compute },
        host: { weights: est.host.weights, kv: est.host.kv, compute: est.host.compute, output: logitsBytes(info, c.slots) },
      },
    });
  }
  return { cases, shapes };
}
