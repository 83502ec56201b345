// Where llama.cpp puts each layer for a given -ngl and device split (llama_model::load_tensors at
// the pinned commit): the first n_layer + 1 - ngl layers stay on the CPU, the rest go to the
// devices in proportion to the split, token_embd always stays on the CPU, and the output layer
// (index n_layer) goes wherever that rule sends it (a tied output head gets its own copy there).

import type { ModelInfo } from '../inspect/modelInfo';

export type PlanModel = Pick<
  ModelInfo,
  | 'architecture'
  | 'layers'
  | 'embd'
  | 'ffn'
  | 'heads'
  | 'kvHeads'
  | 'headDimK'
  | 'headDimV'
  | 'vocab'
  | 'contextLength'
  | 'expertCount'
  | 'expertUsed'
  | 'expertFfn'
  | 'qkvBias'
  | 'qkNorm'
  | 'layerBytes'
  | 'layerExpertBytes'
  | 'largeLayerTensors'
  | 'tokenEmbdBytes'
  | 'outputBytes'
  | 'tiedOutput'
  | 'fileBytes'
  | 'quantLabel'
  | 'slidingWindow'
>;

/** Device index per layer (0..devices-1), or CPU = -1; index n_layer is the output layer. */
export interface LayerLayout {
  layerDevice: number[];
  outputDevice: number;
  /** Repeating layers on devices (what llama.cpp reports as "offloaded N/M layers", minus the output). */
  offloaded: number;
  /**
   * The output device cannot run the output matmul (see outputFitsDevice): llama.cpp leaves the
   * output weight on the CPU, where the matmul then runs; the output norm still goes to the device.
   */
  outputWeightOnHost?: boolean;
}

/** Bytes of output_norm.weight (F32, one per embedding dimension). */
const normBytes = (m: Pick<PlanModel, 'embd'>): number => m.embd * 4;

/**
 * llama.cpp places a weight on a device only if the device supports its op at a 512-token batch
 * (weight_buft_supported); Vulkan refuses an op with a tensor above maxStorageBufferRange. For
 * the output layer that is the weight or the [vocab x 512] F32 logits: 297 MiB for a 152k vocab,
 * more than lavapipe's 128 MiB, far less than a GPU's 4 GiB.
 */
export function outputFitsDevice(
  m: Pick<PlanModel, 'vocab' | 'embd' | 'tiedOutput' | 'tokenEmbdBytes' | 'outputBytes'>,
  maxOpBytes: number | undefined,
): boolean {
  if (!maxOpBytes) return true;
  const weight = m.tiedOutput ? m.tokenEmbdBytes : m.outputBytes - normBytes(m);
  return m.vocab * 512 * 4 <= maxOpBytes && weight <= maxOpBytes;
}

/**
 * `split` are the per-device fractions (llama.cpp's default is proportional to free memory);
 * ngl counts the output layer too, as llama.cpp does (ngl = n_layer + 1 offloads everything).
 */
export function layoutLayers(nLayer: number, ngl: number, split: readonly number[]): LayerLayout {
  const nDev = split.length;
  const act = Math.min(ngl, nLayer + 1);
  const start = Math.max(nLayer + 1 - ngl, 0);
  const sum = split.reduce((a, b) => a + b, 0) || 1;
  const cum: number[] = [];
  let acc = 0;
  for (const f of split) cum.push((acc += f / sum));
  const deviceOf = (il: number): number => {
    if (nDev === 0 || il < start || il - start >= act) return -1;
    const frac = (il - start) / act;
    // std::upper_bound over the cumulative split
    let d = cum.findIndex((c) => c > frac);
    if (d === -1) d = nDev - 1;
    return d;
  };
  const layerDevice = Array.from({ length: nLayer }, (_, il) => deviceOf(il));
  return { layerDevice, outputDevice: deviceOf(nLayer), offloaded: layerDevice.filter((d) => d >= 0).length };
}

export interface WeightSplit {
  /** Per device. */
  device: number[];
  host: number;
}

/**
 * Weights llama.cpp keeps on the CPU although their layer is offloaded: those above the device's
 * maxOpBytes (see outputFitsDevice), as weight_buft_supported decides per tensor (lavapipe's
 * 128 MiB keeps the 70B's Q6_K ffn_down tensors on the host). Their ops run on the CPU too.
 */
export function oversizeWeights(
  m: PlanModel,
  layout: LayerLayout,
  maxOpBytes: readonly (number | undefined)[],
): Array<{ name: string; layer: number; bytes: number }> {
  return (m.largeLayerTensors ?? []).filter((t) => {
    const d = layout.layerDevice[t.layer];
    const max = d >= 0 ? maxOpBytes[d] : undefined;
    return max !== undefined && t.bytes > max;
  });
}

/** `onHost`: oversizeWeights, which stay on the CPU while the rest of their layer moves. */
export function weightBytes(m: PlanModel, layout: LayerLayout, nDev: number, onHost: ReadonlyArray<{ layer: number; bytes: number }> = []): WeightSplit {
  const device = new Array<number>(nDev).fill(0);
  let host = m.tokenEmbdBytes;
  m.layerBytes.forEach((b, il) => {
    const d = layout.layerDevice[il];
    if (d >= 0) device[d] += b;
    else host += b;
  });
  for (const t of onHost) {
    device[layout.layerDevice[t.layer]] -= t.bytes;
    host += t.bytes;
  }
  // A tied head reads token_embd; off the CPU it gets its own copy on the output device.
  const out = m.outputBytes + (m.tiedOutput && layout.outputDevice >= 0 ? m.tokenEmbdBytes : 0);
  if (layout.outputDevice >= 0 && layout.outputWeightOnHost) {
    // The norm goes to the device; a tied head shares token_embd's CPU copy (llama.cpp reuses it).
    device[layout.outputDevice] += normBytes(m);
    host += m.tiedOutput ? 0 : m.outputBytes - normBytes(m);
  } else if (layout.outputDevice >= 0) device[layout.outputDevice] += out;
  else host += m.outputBytes;
  return { device, host };
}
