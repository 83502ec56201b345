import { GgufHeader, metaArrayLength, metaNumber, metaString } from '../../core/models/gguf/reader';

// What a layer split has to place, read from the GGUF header: the weights of every repeating
// layer (blk.N.*), the output layer (output.weight + output_norm, or a copy of token_embd when the
// model ties its embeddings), the KV cache per layer for a context size, and a compute-buffer
// allowance per device. The input embedding stays on the host CPU (llama.cpp never offloads it).

export interface ModelLayout {
  /** Repeating layers: weight bytes each. */
  layerBytes: number[];
  /** KV cache bytes per layer at the planned context (f16 K and V unless told). */
  kvBytesPerLayer: number;
  /** The output layer's weights (on the last device that takes layers). */
  outputBytes: number;
  /** token_embd: stays in host memory of the machine running llama-server. */
  inputBytes: number;
  /** Compute buffer allowance on each device that takes layers, and extra on the one with the output. */
  computeBytes: number;
  outputComputeBytes: number;
  nEmbd: number;
  nVocab: number;
  arch: string;
}

export interface LayoutOptions {
  ctx: number;
  /** Bytes per K/V element: 2 for f16 (default), ~1.06 for q8_0, ~0.56 for q4_0. */
  kvBytesPerElement?: number;
  /** Physical batch (-ub). Default 512. */
  nUbatch?: number;
}

export function modelLayout(h: Pick<GgufHeader, 'metadata' | 'tensors'>, opts: LayoutOptions): ModelLayout {
  const arch = metaString(h, 'general.architecture') ?? 'llama';
  const nLayer = metaNumber(h, `${arch}.block_count`) ?? 0;
  const nEmbd = metaNumber(h, `${arch}.embedding_length`) ?? 0;
  const nHead = metaNumber(h, `${arch}.attention.head_count`) ?? 1;
  const nHeadKv = metaNumber(h, `${arch}.attention.head_count_kv`) ?? nHead;
  const nFf = metaNumber(h, `${arch}.feed_forward_length`) ?? 4 * nEmbd;
  const headK = metaNumber(h, `${arch}.attention.key_length`) ?? nEmbd / nHead;
  const headV = metaNumber(h, `${arch}.attention.value_length`) ?? nEmbd / nHead;
  const layerBytes = new Array<number>(nLayer).fill(0);
  let outputBytes = 0;
  let inputBytes = 0;
  let tiedOutput = true;
  let nVocab = metaArrayLength(h, 'tokenizer.ggml.tokens') ?? 0;
  for (const t of h.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) {
      const i = Number(m[1]);
      if (i < nLayer) layerBytes[i] += t.byteSize;
    } else if (t.name === 'output.weight') {
      tiedOutput = false;
      outputBytes += t.byteSize;
      nVocab ||= t.shape[1] ?? 0;
    } else if (t.name === 'output_norm.weight' || t.name === 'output_norm.bias' || t.name === 'output.bias') {
      outputBytes += t.byteSize;
    } else if (t.name === 'token_embd.weight') {
      inputBytes += t.byteSize;
      nVocab ||= t.shape[1] ?? 0;
    }
  }
  // Tied embeddings: llama.cpp loads token_embd a second time as the output matrix, on the output device.
  if (tiedOutput) outputBytes += inputBytes;
  const kvEl = opts.kvBytesPerElement ?? 2;
  const kvBytesPerLayer = Math.ceil(opts.ctx * nHeadKv * (headK + headV) * kvEl);
  const ub = opts.nUbatch ?? 512;
  // A deliberately round allowance, not llama.cpp's exact graph (the memory planner has that):
  // two f32 activations of the widest layer per ubatch, plus logits on the output device.
  const computeBytes = Math.max(64 << 20, ub * Math.max(nFf, 4 * nEmbd) * 4 * 2);
  const outputComputeBytes = ub * nVocab * 4;
  return { layerBytes, kvBytesPerLayer, outputBytes, inputBytes, computeBytes, outputComputeBytes, nEmbd, nVocab, arch };
}
