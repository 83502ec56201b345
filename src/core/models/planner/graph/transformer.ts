// The forward graph llama.cpp builds for the decoder-only transformers Strata plans for (llama,
// qwen2, qwen3, qwen3moe, mistral and their kin: RMS norm, RoPE, GQA attention, SwiGLU FFN or
// top-k MoE), node for node and in the same expansion order as src/models/{llama,qwen2,qwen3,
// qwen3moe}.cpp and llm_graph_context (llama-graph.cpp) at the pinned commit. Only shapes and op
// kinds are kept; the allocator needs nothing else.

import { ElemType, Graph, GraphBuilder, Tensor } from './tensor';

export interface TransformerShape {
  layers: number;
  embd: number;
  heads: number;
  kvHeads: number;
  headDimK: number;
  headDimV: number;
  /** Dense FFN width; ignored when expertCount > 0. */
  ffn: number;
  vocab: number;
  expertCount: number;
  expertUsed: number;
  expertFfn: number;
  qkvBias: boolean;
  qkNorm: boolean;
}

export interface BatchShape {
  /** Tokens in the reserved ubatch: min(n_ctx, n_ubatch). */
  nTokens: number;
  /** Sequences (server slots). */
  nSeqs: number;
  /** Logit rows: llama-server reserves one per slot. */
  nOutputs: number;
  /** KV cells per stream visible to attention (the whole cache when reserving). */
  nKv: number;
  /** 1 with a unified KV cache, else nSeqs. */
  nStream: number;
  flashAttn: boolean;
  /**
   * Quantized K / V cache: llama.cpp then rotates Q, K (and V and the attention output) with a
   * Hadamard matrix when the head size is a multiple of 64 (llama_kv_cache attn_rot_k/v).
   */
  quantizedK?: boolean;
  quantizedV?: boolean;
}

/** Layer stamp of the output norm and head (input-side tensors keep -1). */
export const OUTPUT_LAYER = 1 << 20;

export interface BuiltGraph {
  graph: Graph;
  /** Graph inputs (host-side leafs set each step). */
  inputs: Tensor[];
}

export function buildTransformerGraph(s: TransformerShape, b: BatchShape): BuiltGraph {
  const g = new Graph();
  const t = new GraphBuilder();
  const W = (name: string, ne: number[]) => t.external(name, 'f16', ne);
  const T = b.nTokens;
  const E = s.embd;
  const ns = b.nStream;
  const eKv = s.headDimK * s.kvHeads;
  const eVkv = s.headDimV * s.kvHeads;

  // build_inp_embd: the token path and the (unused) embedding input are both put in the graph.
  const tokens = t.input('inp_tokens', 'i32', [T]);
  const inpEmbd = t.input('inp_embd', 'f32', [E, T]);
  const embd = t.op('GET_ROWS', 'f32', [E, T], [W('token_embd.weight', [E, s.vocab]), tokens], 'embd');
  g.expand(embd);
  g.expand(inpEmbd);

  const pos = t.input('inp_pos', 'i32', [T]);
  const kIdxs = t.input('attn_inp_k_idxs', 'i64', [T]);
  const vIdxs = t.input('attn_inp_v_idxs', 'i64', b.flashAttn ? [T] : [T * eVkv]);
  const mask = t.input('attn_inp_kq_mask', b.flashAttn ? 'f16' : 'f32', [b.nKv, T / ns, 1, ns]);
  const outIds = t.input('out_ids', 'i32', [b.nOutputs]);
  const rotK = b.quantizedK && s.headDimK % 64 === 0 ? t.input('attn_inp_k_rot', 'f32', [kRotSize(s.headDimK), kRotSize(s.headDimK)]) : undefined;
  const rotV = b.quantizedV && s.headDimV % 64 === 0 ? t.input('attn_inp_v_rot', 'f32', [64, 64]) : undefined;
  const inputs = [tokens, inpEmbd, pos, kIdxs, vIdxs, mask, outIds, ...(rotK ? [rotK] : []), ...(rotV ? [rotV] : [])];
  // llama_mul_mat_hadamard on a contiguous tensor: reshape to rows of n, multiply, reshape back.
  const hadamard = (x: Tensor, rot: Tensor) => {
    const n = rot.ne[0];
    const count = x.ne.reduce((a, c) => a * c, 1);
    return t.reshape(t.mulMat(rot, t.reshape(x, [n, count / n])), x.ne);
  };

  const norm = (x: Tensor, w: string, name: string) => t.like('MUL', x, [t.like('RMS_NORM', x, [x], 'norm'), W(w, [x.ne[0]])], name);

  let inpL = embd;
  for (let il = 0; il < s.layers; il++) {
    t.layer = il;
    const inpSA0 = inpL;
    const cur0 = norm(inpL, `blk.${il}.attn_norm.weight`, `attn_norm-${il}`);

    // build_qkv (separate projections, optional bias), reshaped to heads.
    const proj = (w: string, rows: number, heads: number, dim: number, bias: boolean) => {
      let x = t.mulMat(W(`blk.${il}.${w}.weight`, [E, rows]), cur0);
      if (bias) x = t.like('ADD', x, [x, W(`blk.${il}.${w}.bias`, [rows])]);
      return t.reshape(x, [dim, heads, T]);
    };
    let q = proj('attn_q', s.headDimK * s.heads, s.heads, s.headDimK, s.qkvBias);
    let k = proj('attn_k', eKv, s.kvHeads, s.headDimK, s.qkvBias);
    let v = proj('attn_v', eVkv, s.kvHeads, s.headDimV, s.qkvBias);
    if (s.qkNorm) {
      q = norm(q, `blk.${il}.attn_q_norm.weight`, `Qcur_normed-${il}`);
    }
    q = t.like('ROPE', q, [q, pos], `Qcur-${il}`);
    if (s.qkNorm) {
      k = norm(k, `blk.${il}.attn_k_norm.weight`, `Kcur_normed-${il}`);
    }
    k = t.like('ROPE', k, [k, pos], `Kcur-${il}`);
    if (rotK) {
      q = hadamard(q, rotK);
      k = hadamard(k, rotK);
    }
    if (rotV) v = hadamard(v, rotV);

    // build_attn: q, v, k expanded in this order, then the two cache stores.
    g.expand(q);
    g.expand(v);
    g.expand(k);
    const kCache = t.external(`cache_k_l${il}`, 'f16', [eKv, b.nKv, ns]);
    const vCache = t.external(`cache_v_l${il}`, 'f16', [eVkv, b.nKv, ns]);
    const kStoreDst = ns > 1 ? t.reshape(kCache, [eKv, b.nKv * ns]) : kCache;
    g.expand(t.setRows(kStoreDst, t.view(k, [eKv, T], [4, k.nb[2]]), kIdxs));
    if (b.flashAttn) {
      const vDst = ns > 1 ? t.reshape(vCache, [eVkv, b.nKv * ns]) : vCache;
      g.expand(t.setRows(vDst, t.view(v, [eVkv, T], [4, v.nb[2]]), vIdxs));
    } else {
      const v2 = t.reshape(v, [eVkv, T]);
      const vView = t.reshape(vCache, [1, eVkv * b.nKv * ns]);
      g.expand(t.setRows(vView, t.reshape(v2, [1, eVkv * T]), vIdxs));
    }

    // build_attn_mha
    const qv = t.view(q, [s.headDimK, s.heads, T / ns, ns], [4, q.nb[1], q.nb[2], q.nb[3] / ns]);
    const qp = t.permute(qv, [0, 2, 1, 3]);
    const kv = t.view(kCache, [s.headDimK, s.kvHeads, b.nKv, ns], [2, 2 * s.headDimK, 2 * eKv, 2 * eKv * b.nKv]);
    const kp = t.permute(kv, [0, 2, 1, 3]);
    let attn: Tensor;
    if (b.flashAttn) {
      const vv = t.view(vCache, [s.headDimV, s.kvHeads, b.nKv, ns], [2, 2 * s.headDimV, 2 * eVkv, 2 * eVkv * b.nKv]);
      const vp = t.permute(vv, [0, 2, 1, 3]);
      const fa = t.op('FLASH_ATTN_EXT', 'f32', [s.headDimV, s.heads, T / ns, ns], [qp, kp, vp, mask]);
      attn = t.reshape(fa, [s.headDimV * s.heads, T], `kqv_out-${il}`);
    } else {
      const kq = t.mulMat(kp, qp, `kq-${il}`);
      const sm = t.like('SOFT_MAX', kq, [kq, mask], `kq_soft_max-${il}`);
      const vv = t.view(vCache, [b.nKv, s.kvHeads, s.headDimV, ns], [2 * b.nKv * s.headDimV, 2 * b.nKv, 2, 2 * b.nKv * eVkv]);
      const vp = t.permute(vv, [0, 2, 1, 3]);
      const kqv = t.mulMat(vp, sm, `kqv-${il}`);
      const perm = t.permute(kqv, [0, 2, 1, 3]);
      attn = t.op('CONT', 'f32', [s.headDimV * s.heads, T], [perm], `kqv_out-${il}`);
    }
    g.expand(attn);
    if (rotV) attn = hadamard(attn, rotV);
    let cur = t.mulMat(W(`blk.${il}.attn_output.weight`, [s.headDimV * s.heads, E]), attn);

    let inpSA = inpSA0;
    if (il === s.layers - 1) {
      cur = t.op('GET_ROWS', 'f32', [E, b.nOutputs], [cur, outIds]);
      inpSA = t.op('GET_ROWS', 'f32', [E, b.nOutputs], [inpSA, outIds]);
    }
    const ffnInp = t.like('ADD', cur, [cur, inpSA], `ffn_inp-${il}`);
    const x = norm(ffnInp, `blk.${il}.ffn_norm.weight`, `ffn_norm-${il}`);
    const ffnOut = s.expertCount > 0 ? moeFfn(t, g, s, x, il) : denseFfn(t, s, x, il, W);
    inpL = t.like('ADD', ffnOut, [ffnOut, ffnInp], `l_out-${il}`);
  }

  t.layer = OUTPUT_LAYER;
  const resultNorm = norm(inpL, 'output_norm.weight', 'result_norm');
  resultNorm.output = true;
  const logits = t.mulMat(W('output.weight', [E, s.vocab]), resultNorm, 'result_output');
  logits.output = true;
  g.expand(logits);
  return { graph: g, inputs };
}

/** The K rotation size: the largest power of two (from 64) that divides the head size. */
function kRotSize(headDim: number): number {
  let n = 64;
  do n *= 2;
  while (headDim % n === 0);
  return n / 2;
}

function denseFfn(t: GraphBuilder, s: TransformerShape, x: Tensor, il: number, W: (n: string, ne: number[]) => Tensor): Tensor {
  const up = t.mulMat(W(`blk.${il}.ffn_up.weight`, [s.embd, s.ffn]), x, `ffn_up-${il}`);
  const gate = t.mulMat(W(`blk.${il}.ffn_gate.weight`, [s.embd, s.ffn]), x, `ffn_gate-${il}`);
  const act = t.op('GLU', 'f32', gate.ne, [gate, up], `ffn_swiglu-${il}`);
  return t.mulMat(W(`blk.${il}.ffn_down.weight`, [s.ffn, s.embd]), act, `ffn_out-${il}`);
}

/** build_moe_ffn with softmax gating and normalized top-k weights (Qwen3 MoE, Mixtral-style). */
function moeFfn(t: GraphBuilder, g: Graph, s: TransformerShape, x: Tensor, il: number): Tensor {
  const T = x.ne[1];
  const E = s.embd;
  const n = s.expertCount;
  const k = s.expertUsed;
  const ext = (name: string, ne: number[], type: ElemType = 'f16') => t.external(`blk.${il}.${name}`, type, ne);
  const logits = t.mulMat(ext('ffn_gate_inp.weight', [E, n]), x, `ffn_moe_logits-${il}`);
  const probs = t.like('SOFT_MAX', logits, [logits], `ffn_moe_probs-${il}`);
  const sorted = t.op('ARGSORT', 'i32', [n, T], [probs]);
  const selected = t.view(sorted, [k, T], [4, sorted.nb[1]], 0, `ffn_moe_topk-${il}`);
  const probs3 = t.reshape(probs, [1, n, T]);
  let weights = t.op('GET_ROWS', 'f32', [1, k, T], [probs3, selected], `ffn_moe_weights-${il}`);
  const w2 = t.reshape(weights, [k, T]);
  let sum = t.op('SUM_ROWS', 'f32', [1, T], [w2]);
  sum = t.like('CLAMP', sum, [sum]);
  const div = t.like('DIV', w2, [w2, sum]);
  weights = t.reshape(div, [1, k, T]);
  g.expand(weights);
  const cur3 = t.reshape(x, [E, 1, T]);
  const mmId = (name: string, rows: number, input: Tensor) => t.op('MUL_MAT_ID', 'f32', [rows, k, T], [ext(name, [input.ne[0], rows, n]), input, selected]);
  const up = mmId('ffn_up_exps.weight', s.expertFfn, cur3);
  const gate = mmId('ffn_gate_exps.weight', s.expertFfn, cur3);
  const act = t.op('GLU', 'f32', gate.ne, [gate, up]);
  let experts = mmId('ffn_down_exps.weight', E, act);
  experts = t.like('MUL', experts, [experts, weights]);
  g.expand(experts);
  const views: Tensor[] = [];
  for (let i = 0; i < k; i++) {
    const vw = t.view(experts, [E, T], [4, experts.nb[2]], i * experts.nb[1]);
    views.push(vw);
    g.expand(vw);
  }
  let out = views[0];
  for (let i = 1; i < k; i++) {
    out = t.like('ADD', out, [out, views[i]]);
    g.expand(out);
  }
  if (k === 1) out = t.op('CONT', 'f32', [E, T], [out]);
  return out;
}
