// Compute-buffer sizes for a concrete configuration, by building llama.cpp's reserve graphs and
// running ggml-alloc over them (graph/). llama_context reserves the prompt-processing graph
// (n_ubatch tokens, one logit row per slot in llama-server) and the one-token-per-slot graph;
// each buffer keeps the larger of the two.

import { KvCacheType, isQuantizedKv, kvCells } from './kvCache';
import { scheduleBuffers } from './graph/schedule';
import { TransformerShape, buildTransformerGraph } from './graph/transformer';

export interface ComputeConfig {
  nCtx: number;
  slots: number;
  unified: boolean;
  flashAttn: boolean;
  typeK: KvCacheType;
  typeV: KvCacheType;
  /** -b (default 2048) and -ub (default 512). */
  nBatch: number;
  nUbatch: number;
  /** Logit rows reserved: llama-server uses one per slot; llama-cli/bench use n_batch. */
  nOutputs?: number;
  /**
   * Partial offload: bytes of the largest weight tensor left on the CPU. For batches of 32+
   * tokens llama.cpp runs those layers' matrix products on the GPU too (op offload), copying
   * the weight into the GPU's compute buffer.
   */
  largestCpuWeight?: number;
}

export interface ComputePlacement {
  /** Alignment of each device's buffer type, then the host's last (CPU: 32, CUDA/HIP: 128). */
  alignments: number[];
  /** Per device: a Vulkan device, whose backend reorders the graph before allocation (graph/vulkanOrder.ts). */
  vulkanOrder?: readonly boolean[];
  /** Device index (into alignments) of each layer; alignments.length - 1 is the host/CPU. */
  layerDevice: (layer: number) => number;
  outputDevice: number;
  /** Names of weights kept on the CPU inside offloaded layers (above a Vulkan device's maxStorageBufferRange). */
  hostWeights?: readonly string[];
}

const cache = new Map<string, number[]>();

/** Bytes per buffer (devices in order, host last). */
export function computeBufferBytes(model: TransformerShape, cfg: ComputeConfig, place: ComputePlacement): number[] {
  // Only the hyper-parameters: callers pass whole ModelInfos, whose per-layer byte lists would bloat the key.
  const shape: TransformerShape = {
    layers: model.layers,
    embd: model.embd,
    heads: model.heads,
    kvHeads: model.kvHeads,
    headDimK: model.headDimK,
    headDimV: model.headDimV,
    ffn: model.ffn,
    vocab: model.vocab,
    expertCount: model.expertCount,
    expertUsed: model.expertUsed,
    expertFfn: model.expertFfn,
    qkvBias: model.qkvBias,
    qkNorm: model.qkNorm,
  };
  const nCtx = Math.ceil(cfg.nCtx / 256) * 256;
  const nBatch = Math.min(nCtx, cfg.nBatch);
  const nUbatch = Math.min(nBatch, cfg.nUbatch);
  const nTokensPP = Math.min(nCtx, nUbatch);
  const cells = kvCells(cfg);
  const nStream = cells.streams;
  const layerMap = Array.from({ length: shape.layers }, (_, i) => place.layerDevice(i));
  const key = JSON.stringify([shape, cfg, nTokensPP, place.alignments, place.vulkanOrder, place.hostWeights, layerMap, place.outputDevice]);
  const hit = cache.get(key);
  if (hit) return hit;

  const outputs = cfg.nOutputs ?? cfg.slots;
  const run = (nTokens: number, nOutputs: number, layers: number[], outputDevice: number) => {
    // graph_reserve rounds n_tokens up to a multiple of the sequences.
    const t = Math.ceil(nTokens / cfg.slots) * cfg.slots;
    const built = buildTransformerGraph(shape, {
      nTokens: t,
      nSeqs: cfg.slots,
      nOutputs,
      nKv: cells.perStream,
      nStream,
      flashAttn: cfg.flashAttn,
      quantizedK: isQuantizedKv(cfg.typeK),
      quantizedV: isQuantizedKv(cfg.typeV),
    });
    return scheduleBuffers(built, {
      buffers: place.alignments.map((alignment, i) => ({ alignment, vulkanOrder: place.vulkanOrder?.[i] === true })),
      layerBackend: (il) => layers[il],
      outputBackend: outputDevice,
      hostWeights: place.hostWeights?.length ? new Set(place.hostWeights) : undefined,
    });
  };
  const cpu = place.alignments.length - 1;
  const partial = cpu > 0 && layerMap.some((d) => d === cpu) && layerMap.some((d) => d !== cpu);
  // ggml_backend_sched op offload (GGML_OP_OFFLOAD_MIN_BATCH = 32): the prompt graph of a partial
  // offload runs on the first GPU, CPU weights copied in one at a time. Approximate: the full
  // graph on the GPU plus one copy of the largest CPU weight (measured on an H100: within 10 %).
  const ppLayers = partial && nTokensPP >= 32 ? layerMap.map(() => 0) : layerMap;
  const pp = run(nTokensPP, Math.min(nTokensPP, outputs), ppLayers, partial && nTokensPP >= 32 ? 0 : place.outputDevice);
  if (partial && nTokensPP >= 32) pp[0] += cfg.largestCpuWeight ?? 0;
  const tg = run(cfg.slots, cfg.slots, layerMap, place.outputDevice);
  const out = pp.map((b, i) => Math.max(b, tg[i]));
  if (cache.size > 256) cache.clear();
  cache.set(key, out);
  return out;
}
