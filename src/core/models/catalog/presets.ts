// Models Strata offers out of the box. Repositories and file names are the public GGUF
// conversions on Hugging Face (bartowski's, which publish every quant of these models in one
// place and keep the names stable). Sizes: `published` where the hub lists the byte size,
// `estimated` (from parameters × bits per weight, within ~2 %) where it could not be read here;
// the download checks the real size against the hub before starting.
//
// SHA-256: none is written down here. These values cannot be looked up offline and a wrong one
// would refuse a good file, so every preset says `sha256: 'verify-on-first-download'`: the
// downloader takes the hub's own hash (the LFS object id it sends as X-Linked-Etag), checks the
// bytes against it, and remembers it for next time.

import type { Role } from '../planner/plan';

export type Quant = 'Q4_K_M' | 'Q5_K_M' | 'Q6_K' | 'Q8_0';
export const PRESET_QUANTS: readonly Quant[] = ['Q4_K_M', 'Q5_K_M', 'Q6_K', 'Q8_0'];

/** The hyper-parameters that size the KV cache and the compute buffers, as in config.json. */
export interface ArchSpec {
  architecture: string;
  layers: number;
  embd: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  contextLength: number;
  tiedOutput: boolean;
  qkvBias: boolean;
  qkNorm: boolean;
  experts?: { count: number; used: number; ffn: number };
  parameters: number;
}

export interface PresetFile {
  quant: Quant;
  repo: string;
  /** One file, or every part of a split GGUF in order (paths inside the repository). */
  files: string[];
  sizeBytes: number;
  sizeSource: 'published' | 'estimated';
  sha256: 'verify-on-first-download' | string[];
}

export interface PresetModel {
  id: string;
  displayName: string;
  roles: Role[];
  licence: string;
  arch: ArchSpec;
  /** Catalog ids of models this one can draft for (same tokenizer). */
  draftFor?: string[];
  files: PresetFile[];
}

const QWEN25_VOCAB_SMALL = 151936;
const QWEN25_VOCAB = 152064;

/** Bits per weight of the whole file for each quant (llama-quantize's mixes, measured on the shapes). */
const BPW: Record<Quant, number> = { Q4_K_M: 4.85, Q5_K_M: 5.69, Q6_K: 6.56, Q8_0: 8.5 };

function bartowski(
  repo: string,
  stem: string,
  arch: ArchSpec,
  sizes: Partial<Record<Quant, number>>,
  split: Partial<Record<Quant, number>> = {},
): PresetFile[] {
  return PRESET_QUANTS.map((quant) => {
    const published = sizes[quant];
    const parts = split[quant];
    const files = parts
      ? Array.from({ length: parts }, (_, i) => `${stem}-${quant}/${stem}-${quant}-${String(i + 1).padStart(5, '0')}-of-${String(parts).padStart(5, '0')}.gguf`)
      : [`${stem}-${quant}.gguf`];
    return {
      quant,
      repo,
      files,
      sizeBytes: published ?? Math.round((arch.parameters * BPW[quant]) / 8),
      sizeSource: published ? 'published' : 'estimated',
      sha256: 'verify-on-first-download',
    };
  });
}

const A = {
  qwen25Coder05: {
    architecture: 'qwen2',
    layers: 24,
    embd: 896,
    heads: 14,
    kvHeads: 2,
    headDim: 64,
    ffn: 4864,
    vocab: QWEN25_VOCAB_SMALL,
    contextLength: 32768,
    tiedOutput: true,
    qkvBias: true,
    qkNorm: false,
    parameters: 494_032_768,
  },
  qwen25Coder15: {
    architecture: 'qwen2',
    layers: 28,
    embd: 1536,
    heads: 12,
    kvHeads: 2,
    headDim: 128,
    ffn: 8960,
    vocab: QWEN25_VOCAB_SMALL,
    contextLength: 32768,
    tiedOutput: true,
    qkvBias: true,
    qkNorm: false,
    parameters: 1_543_714_304,
  },
  qwen25Coder7: {
    architecture: 'qwen2',
    layers: 28,
    embd: 3584,
    heads: 28,
    kvHeads: 4,
    headDim: 128,
    ffn: 18944,
    vocab: QWEN25_VOCAB,
    contextLength: 32768,
    tiedOutput: false,
    qkvBias: true,
    qkNorm: false,
    parameters: 7_615_616_512,
  },
  qwen25Coder14: {
    architecture: 'qwen2',
    layers: 48,
    embd: 5120,
    heads: 40,
    kvHeads: 8,
    headDim: 128,
    ffn: 13824,
    vocab: QWEN25_VOCAB,
    contextLength: 32768,
    tiedOutput: false,
    qkvBias: true,
    qkNorm: false,
    parameters: 14_770_033_664,
  },
  qwen25Coder32: {
    architecture: 'qwen2',
    layers: 64,
    embd: 5120,
    heads: 40,
    kvHeads: 8,
    headDim: 128,
    ffn: 27648,
    vocab: QWEN25_VOCAB,
    contextLength: 32768,
    tiedOutput: false,
    qkvBias: true,
    qkNorm: false,
    parameters: 32_763_876_352,
  },
  qwen3Coder30A3: {
    architecture: 'qwen3moe',
    layers: 48,
    embd: 2048,
    heads: 32,
    kvHeads: 4,
    headDim: 128,
    ffn: 6144,
    vocab: QWEN25_VOCAB_SMALL,
    contextLength: 262144,
    tiedOutput: false,
    qkvBias: false,
    qkNorm: true,
    experts: { count: 128, used: 8, ffn: 768 },
    parameters: 30_532_122_624,
  },
  llama33_70: {
    architecture: 'llama',
    layers: 80,
    embd: 8192,
    heads: 64,
    kvHeads: 8,
    headDim: 128,
    ffn: 28672,
    vocab: 128256,
    contextLength: 131072,
    tiedOutput: false,
    qkvBias: false,
    qkNorm: false,
    parameters: 70_553_706_560,
  },
  llama32_1: {
    architecture: 'llama',
    layers: 16,
    embd: 2048,
    heads: 32,
    kvHeads: 8,
    headDim: 64,
    ffn: 8192,
    vocab: 128256,
    contextLength: 131072,
    tiedOutput: true,
    qkvBias: false,
    qkNorm: false,
    parameters: 1_235_814_400,
  },
} satisfies Record<string, ArchSpec>;

export const PRESETS: readonly PresetModel[] = [
  {
    id: 'qwen2.5-coder-0.5b',
    displayName: 'Qwen2.5 Coder 0.5B Instruct',
    roles: ['draft'],
    licence: 'Apache-2.0',
    arch: A.qwen25Coder05,
    draftFor: ['qwen2.5-coder-1.5b', 'qwen2.5-coder-7b', 'qwen2.5-coder-14b', 'qwen2.5-coder-32b'],
    files: bartowski('bartowski/Qwen2.5-Coder-0.5B-Instruct-GGUF', 'Qwen2.5-Coder-0.5B-Instruct', A.qwen25Coder05, {}),
  },
  {
    id: 'qwen2.5-coder-1.5b',
    displayName: 'Qwen2.5 Coder 1.5B Instruct',
    roles: ['fim', 'draft'],
    licence: 'Apache-2.0',
    arch: A.qwen25Coder15,
    draftFor: ['qwen2.5-coder-7b', 'qwen2.5-coder-14b', 'qwen2.5-coder-32b'],
    files: bartowski('bartowski/Qwen2.5-Coder-1.5B-Instruct-GGUF', 'Qwen2.5-Coder-1.5B-Instruct', A.qwen25Coder15, {}),
  },
  {
    id: 'qwen2.5-coder-7b',
    displayName: 'Qwen2.5 Coder 7B Instruct',
    roles: ['fim', 'chat', 'both'],
    licence: 'Apache-2.0',
    arch: A.qwen25Coder7,
    files: bartowski('bartowski/Qwen2.5-Coder-7B-Instruct-GGUF', 'Qwen2.5-Coder-7B-Instruct', A.qwen25Coder7, { Q4_K_M: 4.68e9, Q8_0: 8.1e9 }),
  },
  {
    id: 'qwen2.5-coder-14b',
    displayName: 'Qwen2.5 Coder 14B Instruct',
    roles: ['fim', 'chat', 'both'],
    licence: 'Apache-2.0',
    arch: A.qwen25Coder14,
    files: bartowski('bartowski/Qwen2.5-Coder-14B-Instruct-GGUF', 'Qwen2.5-Coder-14B-Instruct', A.qwen25Coder14, { Q4_K_M: 8.99e9, Q8_0: 15.7e9 }),
  },
  {
    id: 'qwen2.5-coder-32b',
    displayName: 'Qwen2.5 Coder 32B Instruct',
    roles: ['chat', 'fim', 'both'],
    licence: 'Apache-2.0',
    arch: A.qwen25Coder32,
    files: bartowski('bartowski/Qwen2.5-Coder-32B-Instruct-GGUF', 'Qwen2.5-Coder-32B-Instruct', A.qwen25Coder32, { Q4_K_M: 19.85e9, Q8_0: 34.82e9 }),
  },
  {
    id: 'qwen3-coder-30b-a3b',
    displayName: 'Qwen3 Coder 30B A3B Instruct',
    roles: ['chat', 'fim', 'both'],
    licence: 'Apache-2.0',
    arch: A.qwen3Coder30A3,
    files: bartowski('bartowski/Qwen_Qwen3-Coder-30B-A3B-Instruct-GGUF', 'Qwen_Qwen3-Coder-30B-A3B-Instruct', A.qwen3Coder30A3, {}),
  },
  {
    id: 'llama-3.3-70b',
    displayName: 'Llama 3.3 70B Instruct',
    roles: ['chat'],
    licence: 'Llama 3.3 Community License',
    arch: A.llama33_70,
    // bartowski splits files over the hub's 50 GB limit into a folder of parts.
    files: bartowski('bartowski/Llama-3.3-70B-Instruct-GGUF', 'Llama-3.3-70B-Instruct', A.llama33_70, { Q4_K_M: 42.52e9, Q8_0: 74.98e9 }, { Q6_K: 2, Q8_0: 2 }),
  },
  {
    id: 'llama-3.2-1b',
    displayName: 'Llama 3.2 1B Instruct',
    roles: ['draft'],
    licence: 'Llama 3.2 Community License',
    arch: A.llama32_1,
    draftFor: ['llama-3.3-70b'],
    files: bartowski('bartowski/Llama-3.2-1B-Instruct-GGUF', 'Llama-3.2-1B-Instruct', A.llama32_1, {}),
  },
];

export function presetById(id: string): PresetModel | undefined {
  return PRESETS.find((p) => p.id === id);
}
