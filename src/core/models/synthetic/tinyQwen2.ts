// A tiny random-weight model with the Qwen2 architecture and the real Qwen2.5-Coder tokenizer:
// llama-server loads it in a blink and serves /infill and chat (gibberish, but real protocol).
// F16/F32 weights only: random Q4_K blocks crash llama.cpp's CPU repacking, F16 loads fine.

import { GgmlType, LlamaFileType } from '../gguf/ggmlTypes';
import { GgufTensorSpec, GgufWriteResult, writeGguf } from '../gguf/writer';
import { GgufMetadataValue, gv } from '../gguf/values';
import { Rng, floatChunks } from './random';
import { qwen25CoderTokenizer } from './tokenizers';

export interface TinyQwen2Options {
  path: string;
  /** Same seed (and options) → byte-identical file. 32-bit integer. */
  seed: number;
  /** llama.cpp's models/ggml-vocab-qwen2.gguf. */
  vocabPath: string;
  /** At least 4 by default so layers can be split over 2 RPC peers + local. */
  layers?: number;
  embd?: number;
  heads?: number;
  kvHeads?: number;
  ffn?: number;
  contextLength?: number;
  weightType?: 'F16' | 'F32';
  /** Share token_embd with the output head (as small Qwen2.5 models do); halves the file. */
  tiedEmbeddings?: boolean;
}

export const TINY_QWEN2_DEFAULTS = {
  layers: 4,
  embd: 64,
  heads: 4,
  kvHeads: 2,
  ffn: 192,
  contextLength: 32768,
  weightType: 'F16' as 'F16' | 'F32',
  tiedEmbeddings: true,
};

export type ResolvedTinyQwen2Options = Required<Omit<TinyQwen2Options, 'path' | 'vocabPath'>>;

export function resolveTinyQwen2Options(o: Omit<TinyQwen2Options, 'path' | 'vocabPath'>): ResolvedTinyQwen2Options {
  const r = { ...TINY_QWEN2_DEFAULTS, ...stripUndefined(o) } as ResolvedTinyQwen2Options;
  if (!Number.isInteger(r.seed)) throw new Error(`seed must be an integer, got ${r.seed}`);
  if (r.embd % r.heads !== 0) throw new Error(`embd ${r.embd} is not divisible by heads ${r.heads}`);
  if (r.heads % r.kvHeads !== 0) throw new Error(`heads ${r.heads} is not divisible by kvHeads ${r.kvHeads}`);
  if ((r.embd / r.heads) % 2 !== 0) throw new Error('head size must be even for RoPE');
  if (r.layers < 1) throw new Error('layers must be at least 1');
  return r;
}

export interface TinyModelResult extends GgufWriteResult {
  nVocab: number;
  parameters: number;
}

export async function writeTinyQwen2Model(opts: TinyQwen2Options): Promise<TinyModelResult> {
  const o = resolveTinyQwen2Options(opts);
  const tokenizer = await qwen25CoderTokenizer(opts.vocabPath);
  const tokens = tokenizer.find(([k]) => k === 'tokenizer.ggml.tokens')![1];
  const nVocab = (tokens.value as readonly string[]).length;
  const wtype = o.weightType === 'F16' ? GgmlType.F16 : GgmlType.F32;
  const headDim = o.embd / o.heads;
  const kvDim = headDim * o.kvHeads;

  // 2-D weights in the chosen float type, 1-D norms and biases in F32 (as convert_hf_to_gguf does).
  const tensors: GgufTensorSpec[] = [];
  const add = (name: string, shape: number[], type = wtype) => tensors.push({ name, shape, type });
  add('token_embd.weight', [o.embd, nVocab]);
  for (let i = 0; i < o.layers; i++) {
    const b = `blk.${i}.`;
    add(b + 'attn_norm.weight', [o.embd], GgmlType.F32);
    add(b + 'attn_q.weight', [o.embd, o.embd]);
    add(b + 'attn_q.bias', [o.embd], GgmlType.F32);
    add(b + 'attn_k.weight', [o.embd, kvDim]);
    add(b + 'attn_k.bias', [kvDim], GgmlType.F32);
    add(b + 'attn_v.weight', [o.embd, kvDim]);
    add(b + 'attn_v.bias', [kvDim], GgmlType.F32);
    add(b + 'attn_output.weight', [o.embd, o.embd]);
    add(b + 'ffn_norm.weight', [o.embd], GgmlType.F32);
    add(b + 'ffn_gate.weight', [o.embd, o.ffn]);
    add(b + 'ffn_up.weight', [o.embd, o.ffn]);
    add(b + 'ffn_down.weight', [o.ffn, o.embd]);
  }
  add('output_norm.weight', [o.embd], GgmlType.F32);
  if (!o.tiedEmbeddings) add('output.weight', [o.embd, nVocab]);

  const metadata: Array<[string, GgufMetadataValue]> = [
    ['general.architecture', gv.str('qwen2')],
    ['general.type', gv.str('model')],
    ['general.name', gv.str(`Strata tiny Qwen2 (random weights, seed ${o.seed})`)],
    ['general.file_type', gv.u32(o.weightType === 'F16' ? LlamaFileType.MOSTLY_F16 : LlamaFileType.ALL_F32)],
    ['general.quantization_version', gv.u32(2)],
    ['qwen2.block_count', gv.u32(o.layers)],
    ['qwen2.context_length', gv.u32(o.contextLength)],
    ['qwen2.embedding_length', gv.u32(o.embd)],
    ['qwen2.feed_forward_length', gv.u32(o.ffn)],
    ['qwen2.attention.head_count', gv.u32(o.heads)],
    ['qwen2.attention.head_count_kv', gv.u32(o.kvHeads)],
    ['qwen2.rope.freq_base', gv.f32(1_000_000)],
    ['qwen2.attention.layer_norm_rms_epsilon', gv.f32(1e-6)],
    ...tokenizer,
  ];

  const result = await writeGguf(opts.path, {
    metadata,
    tensors,
    tensorData: (t) => {
      const count = t.shape.reduce((a, b) => a * b, 1);
      const kind = t.type === GgmlType.F16 ? 'F16' : 'F32';
      if (t.name.endsWith('_norm.weight')) return floatChunks(count, kind, () => 1);
      const rng = new Rng(o.seed, t.name);
      // Uniform with unit-ish output variance per layer keeps activations finite through any depth.
      const scale = t.name.endsWith('.bias') ? 0.02 : t.name === 'token_embd.weight' ? 0.1 : Math.sqrt(3 / t.shape[0]);
      return floatChunks(count, kind, () => rng.symmetric(scale));
    },
  });
  const parameters = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  return { ...result, nVocab, parameters };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
