// A sparse shape file of Qwen3-Coder-30B-A3B (arch qwen3moe: 48 layers, 128 experts of which 8
// are routed per token, per-head Q/K norms, head size 128 with a 2048-wide residual stream), so
// the planner's MoE graph and its "active experts" speed estimate can be checked against
// llama.cpp like the dense 32B/70B shapes of shapes.ts. Per-tensor types follow llama-quantize's
// Q4_K_M rule as for the dense shapes (attn_v and ffn_down[_exps] get Q6_K on use_more_bits
// layers; the router ffn_gate_inp is never quantized); the published files may differ by a few
// tensors, which changes nothing the planner models.

import { GgmlType, LlamaFileType } from '../gguf/ggmlTypes';
import { GgufMetadataValue, gv } from '../gguf/values';
import { GgufTensorSpec, GgufWriteResult, planGgufLayout, writeGguf } from '../gguf/writer';
import { useMoreBits } from './shapes';
import { qwen25CoderTokenizer } from './tokenizers';

export type MoeShapeQuant = 'Q4_K_M' | 'Q8_0';

export const QWEN3_CODER_30B_A3B = {
  arch: 'qwen3moe',
  displayName: 'Qwen3 Coder 30B A3B Instruct',
  layers: 48,
  embd: 2048,
  heads: 32,
  kvHeads: 4,
  headDim: 128,
  vocab: 151936,
  experts: 128,
  expertsUsed: 8,
  expertFfn: 768,
  contextLength: 262144,
  ropeTheta: 10_000_000,
  rmsEps: 1e-6,
} as const;

export function moeTensors(quant: MoeShapeQuant): GgufTensorSpec[] {
  const s = QWEN3_CODER_30B_A3B;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const w = (name: string, shape: number[], layer = -1): GgufTensorSpec => ({ name, shape, type: typeFor(name, layer, quant) });
  const f32 = (name: string, shape: number[]): GgufTensorSpec => ({ name, shape, type: GgmlType.F32 });
  const out: GgufTensorSpec[] = [w('output.weight', [s.embd, s.vocab]), f32('output_norm.weight', [s.embd]), w('token_embd.weight', [s.embd, s.vocab])];
  for (let i = 0; i < s.layers; i++) {
    const b = `blk.${i}.`;
    const layer = [
      w(b + 'attn_k.weight', [s.embd, kv], i),
      f32(b + 'attn_k_norm.weight', [s.headDim]),
      f32(b + 'attn_norm.weight', [s.embd]),
      w(b + 'attn_output.weight', [q, s.embd], i),
      w(b + 'attn_q.weight', [s.embd, q], i),
      f32(b + 'attn_q_norm.weight', [s.headDim]),
      w(b + 'attn_v.weight', [s.embd, kv], i),
      w(b + 'ffn_down_exps.weight', [s.expertFfn, s.embd, s.experts], i),
      w(b + 'ffn_gate_exps.weight', [s.embd, s.expertFfn, s.experts], i),
      f32(b + 'ffn_gate_inp.weight', [s.embd, s.experts]),
      f32(b + 'ffn_norm.weight', [s.embd]),
      w(b + 'ffn_up_exps.weight', [s.embd, s.expertFfn, s.experts], i),
    ];
    layer.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    out.push(...layer);
  }
  return out;
}

function typeFor(name: string, layer: number, quant: MoeShapeQuant): GgmlType {
  if (quant === 'Q8_0') return GgmlType.Q8_0;
  if (name === 'output.weight') return GgmlType.Q6_K;
  const n = QWEN3_CODER_30B_A3B.layers;
  if (name.includes('attn_v.weight') || name.includes('ffn_down')) return useMoreBits(layer, n) ? GgmlType.Q6_K : GgmlType.Q4_K;
  return GgmlType.Q4_K;
}

export async function writeMoeShapeModel(opts: { path: string; quant: MoeShapeQuant; vocabPath?: string }): Promise<GgufWriteResult & { tensorBytes: number }> {
  const s = QWEN3_CODER_30B_A3B;
  const a = s.arch;
  const metadata: Array<[string, GgufMetadataValue]> = [
    ['general.architecture', gv.str(a)],
    ['general.type', gv.str('model')],
    ['general.name', gv.str(`${s.displayName} (Strata shape file, no weights)`)],
    ['general.file_type', gv.u32(opts.quant === 'Q8_0' ? LlamaFileType.MOSTLY_Q8_0 : LlamaFileType.MOSTLY_Q4_K_M)],
    ['general.quantization_version', gv.u32(2)],
    [`${a}.block_count`, gv.u32(s.layers)],
    [`${a}.context_length`, gv.u32(s.contextLength)],
    [`${a}.embedding_length`, gv.u32(s.embd)],
    [`${a}.feed_forward_length`, gv.u32(6144)],
    [`${a}.attention.head_count`, gv.u32(s.heads)],
    [`${a}.attention.head_count_kv`, gv.u32(s.kvHeads)],
    [`${a}.attention.key_length`, gv.u32(s.headDim)],
    [`${a}.attention.value_length`, gv.u32(s.headDim)],
    [`${a}.rope.freq_base`, gv.f32(s.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, gv.f32(s.rmsEps)],
    [`${a}.expert_count`, gv.u32(s.experts)],
    [`${a}.expert_used_count`, gv.u32(s.expertsUsed)],
    [`${a}.expert_feed_forward_length`, gv.u32(s.expertFfn)],
  ];
  if (opts.vocabPath) metadata.push(...(await qwen25CoderTokenizer(opts.vocabPath, s.vocab)));
  const tensors = moeTensors(opts.quant);
  const result = await writeGguf(opts.path, { metadata, tensors });
  return { ...result, tensorBytes: planGgufLayout({ metadata: [], tensors }).tensors.reduce((n, t) => n + t.byteSize, 0) };
}
