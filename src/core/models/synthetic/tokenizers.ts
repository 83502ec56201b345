// Real tokenizers for synthetic models, taken from llama.cpp's models/ggml-vocab-*.gguf (header-only
// files with the full vocab) and patched into what the released models ship. A real tokenizer is
// what lets llama-server run /infill and /v1/chat/completions on random weights.

import { readGgufHeader } from '../gguf/reader';
import { GgufMetadataValue, GgufValueType, gv } from '../gguf/values';
import { LLAMA33_CHAT_TEMPLATE, QWEN25_CHAT_TEMPLATE } from './chatTemplates';

/** llama_token_type values as stored in tokenizer.ggml.token_type. */
export enum TokenType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export const QWEN_TOKENS = {
  endoftext: 151643,
  imStart: 151644,
  imEnd: 151645,
  fimPrefix: 151659,
  fimMiddle: 151660,
  fimSuffix: 151661,
  fimPad: 151662,
  repoName: 151663,
  fileSep: 151664,
} as const;

// Qwen2.5(-Coder) added tokens from 151643 on. The vocab file has only the first three and
// [PADnnn] placeholders after them. <tool_call> tokens are not "special" in the HF tokenizer,
// which convert_hf_to_gguf maps to USER_DEFINED; everything else is CONTROL.
const QWEN25_ADDED: ReadonlyArray<readonly [string, TokenType]> = [
  ['<|endoftext|>', TokenType.CONTROL],
  ['<|im_start|>', TokenType.CONTROL],
  ['<|im_end|>', TokenType.CONTROL],
  ['<|object_ref_start|>', TokenType.CONTROL],
  ['<|object_ref_end|>', TokenType.CONTROL],
  ['<|box_start|>', TokenType.CONTROL],
  ['<|box_end|>', TokenType.CONTROL],
  ['<|quad_start|>', TokenType.CONTROL],
  ['<|quad_end|>', TokenType.CONTROL],
  ['<|vision_start|>', TokenType.CONTROL],
  ['<|vision_end|>', TokenType.CONTROL],
  ['<|vision_pad|>', TokenType.CONTROL],
  ['<|image_pad|>', TokenType.CONTROL],
  ['<|video_pad|>', TokenType.CONTROL],
  ['<tool_call>', TokenType.USER_DEFINED],
  ['</tool_call>', TokenType.USER_DEFINED],
  ['<|fim_prefix|>', TokenType.CONTROL],
  ['<|fim_middle|>', TokenType.CONTROL],
  ['<|fim_suffix|>', TokenType.CONTROL],
  ['<|fim_pad|>', TokenType.CONTROL],
  ['<|repo_name|>', TokenType.CONTROL],
  ['<|file_sep|>', TokenType.CONTROL],
];

type Entries = Array<[string, GgufMetadataValue]>;

interface BaseVocab {
  tokens: string[];
  types: number[];
  merges: readonly string[];
  pre: string;
}

async function loadBaseVocab(vocabPath: string, expectPre: string): Promise<BaseVocab> {
  const h = await readGgufHeader(vocabPath);
  const get = (k: string) => h.metadata.get(k);
  const pre = get('tokenizer.ggml.pre');
  const tokens = get('tokenizer.ggml.tokens');
  const types = get('tokenizer.ggml.token_type');
  const merges = get('tokenizer.ggml.merges');
  if (pre?.type !== GgufValueType.STRING || pre.value !== expectPre) {
    throw new Error(`${vocabPath} is not the '${expectPre}' vocab (tokenizer.ggml.pre is ${pre?.value === undefined ? 'missing' : `'${String(pre.value)}'`})`);
  }
  if (
    tokens?.type !== GgufValueType.ARRAY ||
    tokens.itemType !== GgufValueType.STRING ||
    types?.type !== GgufValueType.ARRAY ||
    types.itemType !== GgufValueType.INT32 ||
    merges?.type !== GgufValueType.ARRAY ||
    merges.itemType !== GgufValueType.STRING ||
    tokens.value.length !== types.value.length
  ) {
    throw new Error(`${vocabPath} lacks a complete tokenizer (tokens, token_type, merges)`);
  }
  return { tokens: [...tokens.value], types: [...types.value], merges: merges.value, pre: pre.value };
}

/** Pads (or cuts) to the model's embedding rows, as convert_hf_to_gguf does with [PADn] tokens. */
function fitVocab(v: BaseVocab, nVocab: number, mustKeep: number): void {
  if (nVocab < mustKeep) throw new Error(`vocab size ${nVocab} would drop real tokens (need ${mustKeep})`);
  v.tokens.length = Math.min(v.tokens.length, nVocab);
  v.types.length = v.tokens.length;
  for (let i = v.tokens.length; i < nVocab; i++) {
    v.tokens.push(`[PAD${i}]`);
    v.types.push(TokenType.USER_DEFINED);
  }
}

/**
 * Tokenizer metadata of Qwen2.5-Coder-Instruct: qwen2 BPE vocab from `ggml-vocab-qwen2.gguf`, the
 * added tokens at their real ids (FIM tokens CONTROL, with their fim_* id keys so /infill works),
 * eos <|im_end|> and the ChatML template. `nVocab` defaults to the vocab file's length (151936);
 * the 32B model pads to 152064.
 */
export async function qwen25CoderTokenizer(vocabPath: string, nVocab?: number): Promise<Entries> {
  const v = await loadBaseVocab(vocabPath, 'qwen2');
  const first = QWEN_TOKENS.endoftext;
  if (v.tokens[first] !== '<|endoftext|>') {
    throw new Error(`${vocabPath}: token ${first} is '${v.tokens[first]}', not <|endoftext|>; unexpected qwen2 vocab`);
  }
  // Fill any gap between the file's end and the last added token so that ids line up.
  fitVocab(v, Math.max(v.tokens.length, first + QWEN25_ADDED.length), 0);
  QWEN25_ADDED.forEach(([text, type], i) => {
    v.tokens[first + i] = text;
    v.types[first + i] = type;
  });
  fitVocab(v, nVocab ?? v.tokens.length, first + QWEN25_ADDED.length);
  return [
    ['tokenizer.ggml.model', gv.str('gpt2')],
    ['tokenizer.ggml.pre', gv.str(v.pre)],
    ['tokenizer.ggml.tokens', gv.strings(v.tokens)],
    ['tokenizer.ggml.token_type', gv.numbers(GgufValueType.INT32, v.types)],
    ['tokenizer.ggml.merges', gv.strings(v.merges)],
    ['tokenizer.ggml.eos_token_id', gv.u32(QWEN_TOKENS.imEnd)],
    ['tokenizer.ggml.padding_token_id', gv.u32(QWEN_TOKENS.endoftext)],
    ['tokenizer.ggml.bos_token_id', gv.u32(QWEN_TOKENS.endoftext)],
    ['tokenizer.ggml.add_bos_token', gv.bool(false)],
    ['tokenizer.ggml.fim_pre_token_id', gv.u32(QWEN_TOKENS.fimPrefix)],
    ['tokenizer.ggml.fim_suf_token_id', gv.u32(QWEN_TOKENS.fimSuffix)],
    ['tokenizer.ggml.fim_mid_token_id', gv.u32(QWEN_TOKENS.fimMiddle)],
    ['tokenizer.ggml.fim_pad_token_id', gv.u32(QWEN_TOKENS.fimPad)],
    ['tokenizer.ggml.fim_rep_token_id', gv.u32(QWEN_TOKENS.repoName)],
    ['tokenizer.ggml.fim_sep_token_id', gv.u32(QWEN_TOKENS.fileSep)],
    ['tokenizer.chat_template', gv.str(QWEN25_CHAT_TEMPLATE)],
  ];
}

/**
 * Tokenizer metadata of Llama-3.1/3.3: the Llama-3 BPE vocab from `ggml-vocab-llama-bpe.gguf`
 * (128256 tokens), with the special tokens 3.1 renamed (<|eom_id|>, <|python_tag|>, ...), eos
 * <|eot_id|> and the 3.3 chat template.
 */
export async function llama33Tokenizer(vocabPath: string): Promise<Entries> {
  const v = await loadBaseVocab(vocabPath, 'llama-bpe');
  const BOS = 128000;
  if (v.tokens.length !== 128256 || v.tokens[BOS] !== '<|begin_of_text|>') {
    throw new Error(`${vocabPath} is not the 128256-token Llama 3 vocab`);
  }
  const named: Record<number, string> = {
    128000: '<|begin_of_text|>',
    128001: '<|end_of_text|>',
    128002: '<|reserved_special_token_0|>',
    128003: '<|reserved_special_token_1|>',
    128004: '<|finetune_right_pad_id|>',
    128005: '<|reserved_special_token_2|>',
    128006: '<|start_header_id|>',
    128007: '<|end_header_id|>',
    128008: '<|eom_id|>',
    128009: '<|eot_id|>',
    128010: '<|python_tag|>',
  };
  for (let id = BOS; id < 128256; id++) {
    v.tokens[id] = named[id] ?? `<|reserved_special_token_${id - 128008}|>`;
    v.types[id] = TokenType.CONTROL;
  }
  return [
    ['tokenizer.ggml.model', gv.str('gpt2')],
    ['tokenizer.ggml.pre', gv.str(v.pre)],
    ['tokenizer.ggml.tokens', gv.strings(v.tokens)],
    ['tokenizer.ggml.token_type', gv.numbers(GgufValueType.INT32, v.types)],
    ['tokenizer.ggml.merges', gv.strings(v.merges)],
    ['tokenizer.ggml.bos_token_id', gv.u32(BOS)],
    ['tokenizer.ggml.eos_token_id', gv.u32(128009)],
    ['tokenizer.chat_template', gv.str(LLAMA33_CHAT_TEMPLATE)],
  ];
}
