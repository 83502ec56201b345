// KV cache size as llama.cpp allocates it (llama_context + llama_kv_cache at the pinned commit):
// the context is padded to 256 cells; with a unified cache all slots share one pool of n_ctx
// cells, otherwise each slot gets its own n_ctx/n_slots (padded again); every attention layer
// holds K and V rows for every cell, in the chosen cache type (quantized types need flash
// attention for V).

import { GgmlType, rowByteSize } from '../gguf/ggmlTypes';

export type KvCacheType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'iq4_nl' | 'q5_0' | 'q5_1';

export const KV_CACHE_TYPES: readonly KvCacheType[] = ['f16', 'q8_0', 'q4_0', 'bf16', 'f32', 'q5_0', 'q5_1', 'q4_1', 'iq4_nl'];

const GGML_OF: Record<KvCacheType, GgmlType> = {
  f32: GgmlType.F32,
  f16: GgmlType.F16,
  bf16: GgmlType.BF16,
  q8_0: GgmlType.Q8_0,
  q4_0: GgmlType.Q4_0,
  q4_1: GgmlType.Q4_1,
  iq4_nl: GgmlType.IQ4_NL,
  q5_0: GgmlType.Q5_0,
  q5_1: GgmlType.Q5_1,
};

export function isQuantizedKv(t: KvCacheType): boolean {
  return t !== 'f32' && t !== 'f16' && t !== 'bf16';
}

export interface KvShape {
  layers: number;
  kvHeads: number;
  headDimK: number;
  headDimV: number;
}

export interface KvConfig {
  nCtx: number;
  slots: number;
  unified: boolean;
  typeK: KvCacheType;
  typeV: KvCacheType;
}

const pad = (n: number, to: number) => Math.ceil(n / to) * to;

/** Cells per stream and number of streams llama.cpp will allocate for this request. */
export function kvCells(cfg: Pick<KvConfig, 'nCtx' | 'slots' | 'unified'>): { perStream: number; streams: number; total: number } {
  const nCtx = pad(cfg.nCtx, 256);
  if (cfg.unified || cfg.slots <= 1) return { perStream: nCtx, streams: 1, total: nCtx };
  const perStream = pad(Math.floor(nCtx / cfg.slots), 256);
  return { perStream, streams: cfg.slots, total: perStream * cfg.slots };
}

export interface KvBytes {
  k: number;
  v: number;
  total: number;
  perLayer: number;
  cells: number;
}

export function kvCacheBytes(shape: KvShape, cfg: KvConfig, layers = shape.layers): KvBytes {
  const { total: cells } = kvCells(cfg);
  const kRow = rowByteSize(GGML_OF[cfg.typeK], shape.headDimK * shape.kvHeads);
  const vRow = rowByteSize(GGML_OF[cfg.typeV], shape.headDimV * shape.kvHeads);
  const k = kRow * cells * layers;
  const v = vRow * cells * layers;
  return { k, v, total: k + v, perLayer: (kRow + vRow) * cells, cells };
}

/** Bytes of K and V for one token over all layers: the cost of each cell, and what decoding reads per token of context. */
export function kvBytesPerToken(shape: KvShape, typeK: KvCacheType, typeV: KvCacheType): number {
  return shape.layers * (rowByteSize(GGML_OF[typeK], shape.headDimK * shape.kvHeads) + rowByteSize(GGML_OF[typeV], shape.headDimV * shape.kvHeads));
}

/** Largest context (a multiple of 256) whose KV cache fits in `bytes`. */
export function maxContextFor(shape: KvShape, bytes: number, typeK: KvCacheType, typeV: KvCacheType): number {
  const perToken = kvBytesPerToken(shape, typeK, typeV);
  return Math.max(0, Math.floor(bytes / perToken / 256) * 256);
}
