// A plannable model from a preset that is not on disk yet: the architecture from config.json
// and the file size are enough. Token embedding and output head get their usual quant types
// (Q4_K_M: Q4_K and Q6_K; Q8_0: both Q8_0), the rest of the bytes are spread evenly over the
// layers, experts apart in proportion to their parameters. Once the file exists, the planner
// uses the real per-tensor numbers from its header instead.

import type { PlanModel } from '../planner/layout';
import type { ArchSpec, Quant } from './presets';

const EMBD_BPW: Record<Quant, number> = { Q4_K_M: 4.5, Q5_K_M: 5.5, Q6_K: 6.5625, Q8_0: 8.5 };
const OUT_BPW: Record<Quant, number> = { Q4_K_M: 6.5625, Q5_K_M: 6.5625, Q6_K: 6.5625, Q8_0: 8.5 };

export function planModelFromArch(arch: ArchSpec, quant: Quant | string, fileBytes: number): PlanModel {
  const q = (quant in EMBD_BPW ? quant : 'Q4_K_M') as Quant;
  const E = arch.embd;
  const tokenEmbdBytes = Math.round((E * arch.vocab * EMBD_BPW[q]) / 8);
  const outputBytes = arch.tiedOutput ? E * 4 : Math.round((E * arch.vocab * OUT_BPW[q]) / 8) + E * 4;
  const perLayer = Math.max(0, (fileBytes - tokenEmbdBytes - outputBytes) / arch.layers);
  const attn = E * arch.heads * arch.headDim * 2 + E * arch.kvHeads * arch.headDim * 2;
  const expertParams = arch.experts ? 3 * E * arch.experts.ffn * arch.experts.count : 0;
  const denseFfn = arch.experts ? 0 : 3 * E * arch.ffn;
  const expertShare = expertParams / (attn + expertParams + denseFfn || 1);
  return {
    architecture: arch.architecture,
    layers: arch.layers,
    embd: E,
    ffn: arch.experts ? 0 : arch.ffn,
    heads: arch.heads,
    kvHeads: arch.kvHeads,
    headDimK: arch.headDim,
    headDimV: arch.headDim,
    vocab: arch.vocab,
    contextLength: arch.contextLength,
    expertCount: arch.experts?.count ?? 0,
    expertUsed: arch.experts?.used ?? 0,
    expertFfn: arch.experts?.ffn ?? 0,
    qkvBias: arch.qkvBias,
    qkNorm: arch.qkNorm,
    layerBytes: new Array<number>(arch.layers).fill(Math.round(perLayer)),
    layerExpertBytes: new Array<number>(arch.layers).fill(Math.round(perLayer * expertShare)),
    tokenEmbdBytes,
    outputBytes,
    tiedOutput: arch.tiedOutput,
    fileBytes,
    quantLabel: quant,
    slidingWindow: 0,
  };
}
