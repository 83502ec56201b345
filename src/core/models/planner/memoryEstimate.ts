import { computeBufferBytes } from './computeBuffers';
import { PlannerDevice, isVulkanDevice } from './devices';
import { KvCacheType, kvCacheBytes } from './kvCache';
import { LayerLayout, PlanModel, layoutLayers, outputFitsDevice, oversizeWeights, weightBytes } from './layout';

// What llama.cpp will allocate for one explicit configuration (context, KV types, slots,
// offload), device by device and on the host: weights by layer placement, KV cache by
// kvCache.ts, compute buffers by simulating its graph allocator. The planner (plan.ts) searches
// over configurations with it; the accuracy tests and benches hold it against llama.cpp's own
// load log, so it stays a function of the configuration alone.

const MiB = 1024 ** 2;
/** llama-server process itself, its HTTP threads, tokenizer, vocab tables. */
const RUNTIME_OVERHEAD = 256 * MiB;

export interface DeviceMemory {
  id: string;
  name: string;
  weights: number;
  kv: number;
  compute: number;
  /** Logits buffer and prompt cache (host only). */
  other: number;
  total: number;
  budget: number;
}

/** Bytes already promised on each device / the host to another resident model (FIM + chat). */
export interface ReservedMemory {
  device?: number[];
  host?: number;
}

export interface MemoryConfig {
  ctx: number;
  slots: number;
  unified: boolean;
  typeK: KvCacheType;
  typeV: KvCacheType;
  flashAttn: boolean;
  /** llama.cpp -ngl; 0 with no devices. */
  ngl: number;
  nBatch: number;
  nUbatch: number;
  /** Logit rows reserved in the compute graph (llama-server: one per slot). */
  nOutputs?: number;
}

export interface MemoryEstimate {
  devices: DeviceMemory[];
  host: DeviceMemory;
  layout: LayerLayout;
}

/**
 * What llama.cpp will allocate for one explicit configuration, per device and on the host
 * (budgets are the devices' own; the host's is left 0 for the caller).
 */
export function estimateMemory(m: PlanModel, devs: readonly PlannerDevice[], c: MemoryConfig, reserved?: ReservedMemory): MemoryEstimate {
  const layout = layoutLayers(
    m.layers,
    devs.length ? c.ngl : 0,
    devs.map((d) => Math.max(d.budgetBytes, 1)),
  );
  if (layout.outputDevice >= 0 && !outputFitsDevice(m, devs[layout.outputDevice].maxOpBytes)) layout.outputWeightOnHost = true;
  const onHost = oversizeWeights(
    m,
    layout,
    devs.map((d) => d.maxOpBytes),
  );
  const w = weightBytes(m, layout, devs.length, onHost);
  const kvPerLayer = kvCacheBytes(m, { nCtx: c.ctx, slots: c.slots, unified: c.unified, typeK: c.typeK, typeV: c.typeV }, 1).total;
  const kvDev = new Array<number>(devs.length).fill(0);
  let kvHost = 0;
  layout.layerDevice.forEach((d) => {
    if (d >= 0) kvDev[d] += kvPerLayer;
    else kvHost += kvPerLayer;
  });
  const compute = computeBufferBytes(
    m,
    {
      nCtx: c.ctx,
      slots: c.slots,
      unified: c.unified,
      flashAttn: c.flashAttn,
      typeK: c.typeK,
      typeV: c.typeV,
      nBatch: c.nBatch,
      nUbatch: c.nUbatch,
      nOutputs: c.nOutputs,
      largestCpuWeight: largestCpuWeight(m, layout),
    },
    {
      alignments: [...devs.map((d) => d.alignment), 32],
      vulkanOrder: devs.map(isVulkanDevice),
      hostWeights: onHost.map((t) => t.name),
      layerDevice: (il) => (layout.layerDevice[il] >= 0 ? layout.layerDevice[il] : devs.length),
      outputDevice: layout.outputDevice >= 0 && !layout.outputWeightOnHost ? layout.outputDevice : devs.length,
    },
  );
  const devices: DeviceMemory[] = devs.map((d, i) => {
    const other = reserved?.device?.[i] ?? 0;
    return {
      id: d.id,
      name: d.name,
      weights: w.device[i],
      kv: kvDev[i],
      compute: compute[i],
      other,
      total: w.device[i] + kvDev[i] + compute[i] + other,
      budget: d.budgetBytes,
    };
  });
  // llama_context's output buffer: one row of logits per slot, on the host.
  const hostOther = logitsBytes(m, c.slots) + RUNTIME_OVERHEAD + (reserved?.host ?? 0);
  const hostCompute = compute[devs.length];
  const host: DeviceMemory = {
    id: 'host',
    name: 'system RAM',
    weights: w.host,
    kv: kvHost,
    compute: hostCompute,
    other: hostOther,
    total: w.host + kvHost + hostCompute + hostOther,
    budget: 0,
  };
  return { devices, host, layout };
}

/** Bytes of the biggest matrix among the layers left on the CPU (0 when none is). */
function largestCpuWeight(m: PlanModel, layout: LayerLayout): number {
  const E = m.embd;
  const attnQ = E * m.heads * m.headDimK;
  const attnKv = E * m.kvHeads * (m.headDimK + m.headDimV);
  const ffn = m.expertCount > 0 ? 3 * E * m.expertFfn * m.expertCount + E * m.expertCount : 3 * E * m.ffn;
  const biggest = Math.max(m.expertCount > 0 ? E * m.expertFfn * m.expertCount : E * m.ffn, attnQ);
  const params = 2 * attnQ + attnKv + ffn;
  let out = 0;
  layout.layerDevice.forEach((d, il) => {
    if (d < 0) out = Math.max(out, (m.layerBytes[il] * biggest) / params);
  });
  return Math.round(out);
}

export function logitsBytes(m: Pick<PlanModel, 'vocab'>, slots: number): number {
  return m.vocab * 4 * slots;
}
