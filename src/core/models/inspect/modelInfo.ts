// What Strata needs to know about a GGUF model before loading it: the hyper-parameters that size
// the KV cache and compute buffers, where the weight bytes sit (per layer, experts apart), the
// quant mix, and whether it can do FIM and chat. Read from the header only (a 40 GB model costs
// a few MB of reads), all parts of a split model together.

import * as fs from 'fs';
import { ggmlTypeName, tensorElementCount } from '../gguf/ggmlTypes';
import { GgufFormatError, GgufHeader, metaArrayLength, metaNumber, metaString, readGgufHeader } from '../gguf/reader';
import { GgufValueType } from '../gguf/values';
import { parseSplitName, splitPartPaths } from './splitFiles';

export interface QuantShare {
  /** ggml type name, e.g. "Q4_K". */
  type: string;
  tensors: number;
  bytes: number;
}

export interface FimTokens {
  prefix?: number;
  suffix?: number;
  middle?: number;
  pad?: number;
  repo?: number;
  sep?: number;
}

export interface ModelInfo {
  /** First (or only) part. */
  path: string;
  parts: string[];
  /** Sum of the parts' sizes on disk. */
  fileBytes: number;
  name?: string;
  architecture: string;
  /** llama_ftype name from general.file_type ("Q4_K_M"), else the dominant weight type. */
  quantLabel: string;
  layers: number;
  embd: number;
  /** Dense FFN width (0 for pure MoE models). */
  ffn: number;
  heads: number;
  /** Largest per-layer KV head count (GQA); equals heads without GQA. */
  kvHeads: number;
  headDimK: number;
  headDimV: number;
  vocab: number;
  contextLength: number;
  /** Sliding-window size when the architecture uses one (Gemma, Mistral-SWA); 0 otherwise. */
  slidingWindow: number;
  expertCount: number;
  expertUsed: number;
  expertFfn: number;
  expertSharedFfn: number;
  /** Output head shares token_embd (no output.weight tensor). */
  tiedOutput: boolean;
  qkvBias: boolean;
  /** Per-head RMS norms on Q and K (Qwen3). */
  qkNorm: boolean;
  parameters: number;
  tensorBytes: number;
  quantMix: QuantShare[];
  /** Bytes of blk.N.* tensors, by N. */
  layerBytes: number[];
  /** Of layerBytes: routed-expert tensors (*_exps), by N. */
  layerExpertBytes: number[];
  /**
   * blk.N.* tensors above 128 MiB, Vulkan's smallest allowed maxStorageBufferRange: a device with
   * a lower limit than one of them keeps it on the CPU (layout.ts weightBytes). Absent: not known
   * (a catalog estimate).
   */
  largeLayerTensors?: Array<{ name: string; layer: number; bytes: number }>;
  tokenEmbdBytes: number;
  /** output.weight (0 when tied) plus output_norm and other non-layer tensors except token_embd. */
  outputBytes: number;
  fim: FimTokens;
  /** All of prefix, suffix and middle are declared. */
  hasFim: boolean;
  hasChatTemplate: boolean;
  chatTemplateHint?: string;
  tokenizerModel?: string;
}

export interface InspectOptions {
  /** Also verify that every part of a split model exists and agrees (default true). */
  requireAllParts?: boolean;
}

/** A split model with a missing or mismatched part; names the file like GgufFormatError. */
export class SplitModelError extends Error {
  override readonly name = 'SplitModelError';
  constructor(
    readonly filePath: string,
    message: string,
  ) {
    super(message);
  }
}

export async function inspectModel(filePath: string, opts: InspectOptions = {}): Promise<ModelInfo> {
  const split = parseSplitName(filePath);
  const parts = split ? splitPartPaths(filePath) : [filePath];
  if (split && split.index !== 1) {
    // Always describe a split model from its first part, whichever part the user picked.
    return inspectModel(parts[0], opts);
  }
  if (split && opts.requireAllParts !== false) {
    const missing = parts.filter((p) => !fs.existsSync(p));
    if (missing.length) {
      throw new SplitModelError(
        missing[0],
        `${partLabel(missing[0])} is missing: ${missing.length} of ${parts.length} parts of this model are not there; download the missing parts or pick another model.`,
      );
    }
  }
  const headers: GgufHeader[] = [];
  for (const p of split && opts.requireAllParts !== false ? parts : [filePath]) {
    headers.push(await readGgufHeader(p, { maxArrayItems: 0 }));
  }
  if (split) checkSplitHeaders(headers, parts);
  return describe(headers, parts);
}

function partLabel(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

function checkSplitHeaders(headers: GgufHeader[], parts: string[]): void {
  const count = metaNumber(headers[0], 'split.count');
  if (count !== undefined && count !== parts.length) {
    throw new GgufFormatError(parts[0], 'corrupt', `says it has ${count} parts but its name says ${parts.length}`);
  }
  headers.forEach((h, i) => {
    const no = metaNumber(h, 'split.no');
    if (no !== undefined && no !== i) {
      throw new SplitModelError(parts[i], `${partLabel(parts[i])} is part ${no + 1} by its header, not part ${i + 1}; the parts were mixed up or renamed.`);
    }
  });
}

/** The Vulkan spec's minimum maxStorageBufferRange (2^27 bytes): every conformant device takes a tensor this large. */
const MIN_MAX_STORAGE_BUFFER_RANGE = 2 ** 27;

const FTYPE_NAMES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  7: 'Q8_0',
  8: 'Q5_0',
  9: 'Q5_1',
  10: 'Q2_K',
  11: 'Q3_K_S',
  12: 'Q3_K_M',
  13: 'Q3_K_L',
  14: 'Q4_K_S',
  15: 'Q4_K_M',
  16: 'Q5_K_S',
  17: 'Q5_K_M',
  18: 'Q6_K',
  19: 'IQ2_XXS',
  20: 'IQ2_XS',
  21: 'Q2_K_S',
  22: 'IQ3_XS',
  23: 'IQ3_XXS',
  24: 'IQ1_S',
  25: 'IQ4_NL',
  26: 'IQ3_S',
  27: 'IQ3_M',
  28: 'IQ2_S',
  29: 'IQ2_M',
  30: 'IQ4_XS',
  31: 'IQ1_M',
  32: 'BF16',
  36: 'TQ1_0',
  37: 'TQ2_0',
  38: 'MXFP4_MOE',
};

export function fileTypeName(ftype: number | undefined): string | undefined {
  return ftype === undefined ? undefined : FTYPE_NAMES[ftype];
}

function describe(headers: GgufHeader[], parts: string[]): ModelInfo {
  const h0 = headers[0];
  const file = parts[0];
  const arch = metaString(h0, 'general.architecture');
  if (!arch) throw new GgufFormatError(file, 'corrupt', 'has no general.architecture key, so it is not a model llama.cpp can load');
  const key = (k: string) => `${arch}.${k}`;
  const num = (k: string) => metaNumber(h0, key(k));
  const need = (k: string): number => {
    const v = num(k) ?? maxOfArray(h0, key(k));
    if (v === undefined) throw new GgufFormatError(file, 'corrupt', `lacks ${key(k)}, which llama.cpp needs to load it`);
    return v;
  };

  const tensors = headers.flatMap((h) => h.tensors);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const layers = need('block_count');
  const embd = need('embedding_length');
  const heads = need('attention.head_count');
  const kvHeads = num('attention.head_count_kv') ?? maxOfArray(h0, key('attention.head_count_kv')) ?? heads;
  const headDimK = num('attention.key_length') ?? (heads ? embd / heads : 0);
  const headDimV = num('attention.value_length') ?? headDimK;
  const tokenEmbd = byName.get('token_embd.weight');
  const vocab = tokenEmbd?.shape[1] ?? num('vocab_size') ?? metaArrayLength(h0, 'tokenizer.ggml.tokens') ?? 0;

  const layerBytes = new Array<number>(layers).fill(0);
  const layerExpertBytes = new Array<number>(layers).fill(0);
  const largeLayerTensors: Array<{ name: string; layer: number; bytes: number }> = [];
  let tokenEmbdBytes = 0;
  let outputBytes = 0;
  let parameters = 0;
  let tensorBytes = 0;
  const mix = new Map<number, QuantShare>();
  for (const t of tensors) {
    parameters += tensorElementCount(t.shape);
    tensorBytes += t.byteSize;
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m && Number(m[1]) < layers) {
      const il = Number(m[1]);
      layerBytes[il] += t.byteSize;
      if (/_exps\./.test(t.name)) layerExpertBytes[il] += t.byteSize;
      if (t.byteSize > MIN_MAX_STORAGE_BUFFER_RANGE) largeLayerTensors.push({ name: t.name, layer: il, bytes: t.byteSize });
    } else if (t.name === 'token_embd.weight') {
      tokenEmbdBytes += t.byteSize;
    } else {
      outputBytes += t.byteSize;
    }
    // The quant mix is about weights; 1-D norms and biases are always F32 and say nothing.
    if (t.shape.length >= 2) {
      const share = mix.get(t.type) ?? { type: ggmlTypeName(t.type), tensors: 0, bytes: 0 };
      share.tensors++;
      share.bytes += t.byteSize;
      mix.set(t.type, share);
    }
  }
  const quantMix = [...mix.values()].sort((a, b) => b.bytes - a.bytes);

  const ffnTensor = byName.get('blk.0.ffn_up.weight') ?? byName.get('blk.0.ffn_gate.weight');
  const ffn = num('feed_forward_length') ?? maxOfArray(h0, key('feed_forward_length')) ?? ffnTensor?.shape[1] ?? 0;
  const expertCount = num('expert_count') ?? 0;
  const fim: FimTokens = {
    prefix: metaNumber(h0, 'tokenizer.ggml.fim_pre_token_id') ?? metaNumber(h0, 'tokenizer.ggml.prefix_token_id'),
    suffix: metaNumber(h0, 'tokenizer.ggml.fim_suf_token_id') ?? metaNumber(h0, 'tokenizer.ggml.suffix_token_id'),
    middle: metaNumber(h0, 'tokenizer.ggml.fim_mid_token_id') ?? metaNumber(h0, 'tokenizer.ggml.middle_token_id'),
    pad: metaNumber(h0, 'tokenizer.ggml.fim_pad_token_id'),
    repo: metaNumber(h0, 'tokenizer.ggml.fim_rep_token_id'),
    sep: metaNumber(h0, 'tokenizer.ggml.fim_sep_token_id'),
  };
  const template = metaString(h0, 'tokenizer.chat_template');
  const fileBytes = parts.reduce((n, p) => n + (fs.existsSync(p) ? fs.statSync(p).size : 0), 0);

  return {
    path: file,
    parts,
    fileBytes,
    name: metaString(h0, 'general.name'),
    architecture: arch,
    quantLabel: fileTypeName(metaNumber(h0, 'general.file_type')) ?? quantMix[0]?.type ?? 'unknown',
    layers,
    embd,
    ffn: expertCount > 0 && !byName.has('blk.0.ffn_up.weight') ? 0 : ffn,
    heads,
    kvHeads,
    headDimK,
    headDimV,
    vocab,
    contextLength: need('context_length'),
    slidingWindow: num('attention.sliding_window') ?? 0,
    expertCount,
    expertUsed: num('expert_used_count') ?? 0,
    expertFfn: num('expert_feed_forward_length') ?? (expertCount ? (byName.get('blk.0.ffn_up_exps.weight')?.shape[1] ?? 0) : 0),
    expertSharedFfn: num('expert_shared_feed_forward_length') ?? 0,
    tiedOutput: !byName.has('output.weight'),
    qkvBias: byName.has('blk.0.attn_q.bias'),
    qkNorm: byName.has('blk.0.attn_q_norm.weight'),
    parameters,
    tensorBytes,
    quantMix,
    layerBytes,
    layerExpertBytes,
    largeLayerTensors,
    tokenEmbdBytes,
    outputBytes,
    fim,
    hasFim: fim.prefix !== undefined && fim.suffix !== undefined && fim.middle !== undefined,
    hasChatTemplate: !!template,
    chatTemplateHint: template ? templateHint(template) : undefined,
    tokenizerModel: metaString(h0, 'tokenizer.ggml.model'),
  };
}

function maxOfArray(h: GgufHeader, k: string): number | undefined {
  const v = h.metadata.get(k);
  if (!v || v.type !== GgufValueType.ARRAY || !v.value.length) return undefined;
  const nums = (v.value as readonly unknown[]).map(Number).filter((x) => Number.isFinite(x));
  return nums.length ? Math.max(...nums) : undefined;
}

/** A short name for the template family, shown next to the model (what the server will format). */
function templateHint(t: string): string {
  if (t.includes('<|im_start|>')) return 'ChatML';
  if (t.includes('<|start_header_id|>')) return 'Llama 3';
  if (t.includes('[INST]')) return 'Mistral/Llama 2';
  if (t.includes('<start_of_turn>')) return 'Gemma';
  return 'custom';
}

/** "Q4_K 71%, Q6_K 24%, F32 …": the quant mix in one line, biggest first. */
export function quantMixLine(info: Pick<ModelInfo, 'quantMix'>): string {
  const total = info.quantMix.reduce((n, q) => n + q.bytes, 0) || 1;
  return info.quantMix.map((q) => `${q.type} ${Math.round((q.bytes / total) * 100)}%`).join(', ');
}

/** Bytes of weights read for one generated token: everything but token_embd (rows are gathered), MoE experts scaled by used/count. */
export function bytesReadPerToken(info: ModelInfo): number {
  const expertShare = info.expertCount > 0 ? info.expertUsed / info.expertCount : 1;
  let n = info.outputBytes;
  for (let i = 0; i < info.layers; i++) {
    n += info.layerBytes[i] - info.layerExpertBytes[i] + info.layerExpertBytes[i] * expertShare;
  }
  // A tied output head reads token_embd in full for the logits.
  if (info.tiedOutput) n += info.tokenEmbdBytes;
  return n;
}
