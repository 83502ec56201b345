// "Shape" files: GGUFs with the true hyper-parameters, tensor names, shapes and per-tensor quant
// types of big released models, whose data region is a hole (sparse file). They have the real
// file size and header, cost no disk, and let the memory planner and split planner be tested
// against 32B/70B models on a laptop.
//
// Per-tensor types follow llama.cpp's llama-quantize (src/llama-quant.cpp at de3ff81) for a model
// quantized from F16 without an imatrix, and tensors come in the order llama-quantize writes them
// (llama_model_loader's weight_name_comparer: non-block tensors by name, then blocks by number,
// names sorted within a block), which matters because its counters are positional.

import { GgmlType, LlamaFileType } from '../gguf/ggmlTypes';
import { GgufMetadataValue, gv } from '../gguf/values';
import { GgufTensorSpec, GgufWriteResult, planGgufLayout, writeGguf } from '../gguf/writer';
import { llama33Tokenizer, qwen25CoderTokenizer } from './tokenizers';

export type ShapeName = 'qwen2.5-coder-32b' | 'llama-3.3-70b';
export type ShapeQuant = 'Q4_K_M' | 'Q8_0';
export const SHAPE_NAMES: readonly ShapeName[] = ['qwen2.5-coder-32b', 'llama-3.3-70b'];
export const SHAPE_QUANTS: readonly ShapeQuant[] = ['Q4_K_M', 'Q8_0'];

export interface ModelShape {
  arch: 'qwen2' | 'llama';
  displayName: string;
  layers: number;
  embd: number;
  ffn: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  contextLength: number;
  ropeTheta: number;
  rmsEps: number;
  /** Qwen2 has biases on q/k/v. */
  qkvBias: boolean;
  /** llama.cpp's model type from the layer count; the quant rule gives 70B attn_v more bits. */
  is70B: boolean;
  /** Llama 3.1+ "llama3" RoPE scaling, which GGUF stores as a rope_freqs.weight tensor. */
  llama3Rope?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number };
  /** Size of the published file of this model at each quant, in bytes (for comparison only). */
  publishedBytes: Record<ShapeQuant, number>;
}

export const MODEL_SHAPES: Record<ShapeName, ModelShape> = {
  'qwen2.5-coder-32b': {
    arch: 'qwen2',
    displayName: 'Qwen2.5 Coder 32B Instruct',
    layers: 64,
    embd: 5120,
    ffn: 27648,
    heads: 40,
    kvHeads: 8,
    vocab: 152064,
    contextLength: 32768,
    ropeTheta: 1_000_000,
    rmsEps: 1e-6,
    qkvBias: true,
    is70B: false,
    // bartowski/Qwen2.5-Coder-32B-Instruct-GGUF as listed on the hub
    publishedBytes: { Q4_K_M: 19.85e9, Q8_0: 34.82e9 },
  },
  'llama-3.3-70b': {
    arch: 'llama',
    displayName: 'Llama 3.3 70B Instruct',
    layers: 80,
    embd: 8192,
    ffn: 28672,
    heads: 64,
    kvHeads: 8,
    vocab: 128256,
    contextLength: 131072,
    ropeTheta: 500_000,
    rmsEps: 1e-5,
    qkvBias: false,
    is70B: true,
    llama3Rope: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 },
    // bartowski/Llama-3.3-70B-Instruct-GGUF as listed on the hub
    publishedBytes: { Q4_K_M: 42.52e9, Q8_0: 74.98e9 },
  },
};

const FILE_TYPE: Record<ShapeQuant, LlamaFileType> = {
  Q4_K_M: LlamaFileType.MOSTLY_Q4_K_M,
  Q8_0: LlamaFileType.MOSTLY_Q8_0,
};

/** llama-quant.cpp's use_more_bits: first and last eighth of layers, and every third in between. */
export function useMoreBits(iLayer: number, nLayers: number): boolean {
  const eighth = Math.trunc(nLayers / 8);
  return iLayer < eighth || iLayer >= Math.trunc((7 * nLayers) / 8) || (iLayer - eighth) % 3 === 2;
}

/**
 * The type llama-quantize picks for a 2-D weight of a dense (non-MoE, non-Falcon) model with an
 * untied output head, no imatrix and no overrides. `layer` is the block index; since tensors are
 * processed in block order, it equals llama-quant's i_attention_wv / i_ffn_down counters.
 */
export function quantTypeFor(tensorName: string, layer: number, shape: ModelShape, quant: ShapeQuant): GgmlType {
  if (quant === 'Q8_0') return GgmlType.Q8_0;
  // Q4_K_M
  if (tensorName === 'output.weight') return GgmlType.Q6_K;
  if (tensorName.includes('attn_v.weight')) {
    if (useMoreBits(layer, shape.layers)) return GgmlType.Q6_K;
    return shape.is70B ? GgmlType.Q5_K : GgmlType.Q4_K;
  }
  if (tensorName.includes('ffn_down')) return useMoreBits(layer, shape.layers) ? GgmlType.Q6_K : GgmlType.Q4_K;
  return GgmlType.Q4_K;
}

/** Tensor list of the quantized file, in llama-quantize's output order. */
export function shapeTensors(shape: ModelShape, quant: ShapeQuant): GgufTensorSpec[] {
  const { embd, ffn, vocab } = shape;
  const kvDim = (embd / shape.heads) * shape.kvHeads;
  const headDim = embd / shape.heads;
  const weight = (name: string, dims: number[], layer = -1): GgufTensorSpec => ({ name, shape: dims, type: quantTypeFor(name, layer, shape, quant) });
  const f32 = (name: string, dims: number[]): GgufTensorSpec => ({ name, shape: dims, type: GgmlType.F32 });

  const out: GgufTensorSpec[] = [weight('output.weight', [embd, vocab]), f32('output_norm.weight', [embd])];
  if (shape.llama3Rope) out.push(f32('rope_freqs.weight', [headDim / 2]));
  out.push(weight('token_embd.weight', [embd, vocab]));

  for (let i = 0; i < shape.layers; i++) {
    const b = `blk.${i}.`;
    const layer: GgufTensorSpec[] = [
      weight(b + 'attn_k.weight', [embd, kvDim], i),
      f32(b + 'attn_norm.weight', [embd]),
      weight(b + 'attn_output.weight', [embd, embd], i),
      weight(b + 'attn_q.weight', [embd, embd], i),
      weight(b + 'attn_v.weight', [embd, kvDim], i),
      weight(b + 'ffn_down.weight', [ffn, embd], i),
      weight(b + 'ffn_gate.weight', [embd, ffn], i),
      f32(b + 'ffn_norm.weight', [embd]),
      weight(b + 'ffn_up.weight', [embd, ffn], i),
    ];
    if (shape.qkvBias) {
      layer.push(f32(b + 'attn_k.bias', [kvDim]), f32(b + 'attn_q.bias', [embd]), f32(b + 'attn_v.bias', [kvDim]));
    }
    layer.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    out.push(...layer);
  }
  return out;
}

export function shapeMetadata(shape: ModelShape, quant: ShapeQuant): Array<[string, GgufMetadataValue]> {
  const a = shape.arch;
  const md: Array<[string, GgufMetadataValue]> = [
    ['general.architecture', gv.str(a)],
    ['general.type', gv.str('model')],
    ['general.name', gv.str(`${shape.displayName} (Strata shape file, no weights)`)],
    ['general.file_type', gv.u32(FILE_TYPE[quant])],
    ['general.quantization_version', gv.u32(2)],
    [`${a}.block_count`, gv.u32(shape.layers)],
    [`${a}.context_length`, gv.u32(shape.contextLength)],
    [`${a}.embedding_length`, gv.u32(shape.embd)],
    [`${a}.feed_forward_length`, gv.u32(shape.ffn)],
    [`${a}.attention.head_count`, gv.u32(shape.heads)],
    [`${a}.attention.head_count_kv`, gv.u32(shape.kvHeads)],
    [`${a}.rope.freq_base`, gv.f32(shape.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, gv.f32(shape.rmsEps)],
  ];
  if (a === 'llama') {
    md.push([`${a}.vocab_size`, gv.u32(shape.vocab)], [`${a}.rope.dimension_count`, gv.u32(shape.embd / shape.heads)]);
  }
  return md;
}

/** llama3 RoPE factors exactly as convert_hf_to_gguf's LlamaModel.generate_extra_tensors computes them. */
export function llama3RopeFactors(shape: ModelShape): Float32Array {
  const r = shape.llama3Rope;
  if (!r) throw new Error(`${shape.displayName} has no llama3 RoPE scaling`);
  const dim = shape.embd / shape.heads;
  const lowWavelen = r.originalContext / r.lowFreqFactor;
  const highWavelen = r.originalContext / r.highFreqFactor;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(shape.ropeTheta ** Math.fround((2 * i) / dim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = r.factor;
    else {
      const smooth = (r.originalContext / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / r.factor + smooth);
    }
  }
  return out;
}

export interface ShapeModelOptions {
  path: string;
  shape: ShapeName;
  quant: ShapeQuant;
  /**
   * The model family's vocab file from llama.cpp's models/ (ggml-vocab-qwen2.gguf or
   * ggml-vocab-llama-bpe.gguf). With it the header carries the real tokenizer (and its real
   * size); without it there are no tokenizer keys, which is enough for planning only.
   */
  vocabPath?: string;
}

export interface ShapeModelResult extends GgufWriteResult {
  parameters: number;
  tensorBytes: number;
}

export async function writeShapeModel(opts: ShapeModelOptions): Promise<ShapeModelResult> {
  const shape = MODEL_SHAPES[opts.shape];
  if (!shape) throw new Error(`unknown model shape '${opts.shape}'`);
  if (!FILE_TYPE[opts.quant]) throw new Error(`unsupported shape quant '${opts.quant}'`);
  const tensors = shapeTensors(shape, opts.quant);
  const metadata = shapeMetadata(shape, opts.quant);
  if (opts.vocabPath) {
    metadata.push(...(shape.arch === 'qwen2' ? await qwen25CoderTokenizer(opts.vocabPath, shape.vocab) : await llama33Tokenizer(opts.vocabPath)));
  }
  const result = await writeGguf(opts.path, {
    metadata,
    tensors,
    // Everything is a hole except the tiny rope_freqs tensor, whose values are cheap and real.
    tensorData: (t) => (t.name === 'rope_freqs.weight' ? [new Uint8Array(llama3RopeFactors(shape).buffer)] : undefined),
  });
  return { ...result, ...shapeTotals(tensors) };
}

function shapeTotals(tensors: readonly GgufTensorSpec[]): { parameters: number; tensorBytes: number } {
  const layout = planGgufLayout({ metadata: [], tensors });
  return {
    parameters: tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
    tensorBytes: layout.tensors.reduce((n, t) => n + t.byteSize, 0),
  };
}

/** Parameters and tensor bytes of a shape without writing anything (for tests and docs). */
export function shapeSummary(name: ShapeName, quant: ShapeQuant): { parameters: number; tensorBytes: number } {
  return shapeTotals(shapeTensors(MODEL_SHAPES[name], quant));
}
