// ggml tensor types as they appear in GGUF files, with the block geometry needed to compute
// how many bytes a tensor occupies. Numbers and sizes mirror ggml/include/ggml.h and
// gguf-py/gguf/constants.py (GGML_QUANT_SIZES) of llama.cpp; the ids are on-disk values and
// must never be renumbered.

export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
  Q2_0 = 42,
}

export interface GgmlTypeInfo {
  readonly type: GgmlType;
  readonly name: string;
  /** Elements per block: a row's element count must be a multiple of this. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  readonly quantized: boolean;
}

const QK_K = 256;

// [type, block size, bytes per block]
const TABLE: ReadonlyArray<readonly [GgmlType, number, number]> = [
  [GgmlType.F32, 1, 4],
  [GgmlType.F16, 1, 2],
  [GgmlType.Q4_0, 32, 2 + 16],
  [GgmlType.Q4_1, 32, 2 + 2 + 16],
  [GgmlType.Q5_0, 32, 2 + 4 + 16],
  [GgmlType.Q5_1, 32, 2 + 2 + 4 + 16],
  [GgmlType.Q8_0, 32, 2 + 32],
  [GgmlType.Q8_1, 32, 2 + 2 + 32],
  [GgmlType.Q2_K, QK_K, 2 + 2 + QK_K / 16 + QK_K / 4],
  [GgmlType.Q3_K, QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  [GgmlType.Q4_K, QK_K, 2 + 2 + QK_K / 2 + 12],
  [GgmlType.Q5_K, QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12],
  [GgmlType.Q6_K, QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16],
  [GgmlType.Q8_K, QK_K, 4 + QK_K + QK_K / 8],
  [GgmlType.IQ2_XXS, QK_K, 2 + QK_K / 4],
  [GgmlType.IQ2_XS, QK_K, 2 + QK_K / 4 + QK_K / 32],
  [GgmlType.IQ3_XXS, QK_K, 2 + QK_K / 4 + QK_K / 8],
  [GgmlType.IQ1_S, QK_K, 2 + QK_K / 8 + QK_K / 16],
  [GgmlType.IQ4_NL, 32, 2 + 16],
  [GgmlType.IQ3_S, QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4],
  [GgmlType.IQ2_S, QK_K, 2 + QK_K / 4 + QK_K / 16],
  [GgmlType.IQ4_XS, QK_K, 2 + 2 + QK_K / 2 + QK_K / 64],
  [GgmlType.I8, 1, 1],
  [GgmlType.I16, 1, 2],
  [GgmlType.I32, 1, 4],
  [GgmlType.I64, 1, 8],
  [GgmlType.F64, 1, 8],
  [GgmlType.IQ1_M, QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  [GgmlType.BF16, 1, 2],
  [GgmlType.TQ1_0, QK_K, 2 + 4 * 13],
  [GgmlType.TQ2_0, QK_K, 2 + 64],
  [GgmlType.MXFP4, 32, 1 + 16],
  [GgmlType.NVFP4, 64, 4 + 32],
  [GgmlType.Q1_0, 128, 2 + 16],
  [GgmlType.Q2_0, 64, 2 + 16],
];

const NOT_QUANTIZED = new Set<GgmlType>([GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.F64, GgmlType.I8, GgmlType.I16, GgmlType.I32, GgmlType.I64]);

const INFO = new Map<number, GgmlTypeInfo>(
  TABLE.map(([type, blockSize, typeSize]) => [type, { type, name: GgmlType[type], blockSize, typeSize, quantized: !NOT_QUANTIZED.has(type) }]),
);

export function isKnownGgmlType(type: number): type is GgmlType {
  return INFO.has(type);
}

export function ggmlTypeInfo(type: GgmlType | number): GgmlTypeInfo {
  const info = INFO.get(type);
  if (!info) throw new RangeError(`unknown ggml type ${type}`);
  return info;
}

export function ggmlTypeName(type: GgmlType | number): string {
  return INFO.get(type)?.name ?? `type#${type}`;
}

export function ggmlTypeFromName(name: string): GgmlType {
  const upper = name.toUpperCase();
  for (const info of INFO.values()) if (info.name === upper) return info.type;
  throw new RangeError(`unknown ggml type name '${name}'`);
}

/** Number of elements of a tensor; shape is in ggml order (ne[0] = row length). */
export function tensorElementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes of one row of `rowLength` elements (ggml_row_size). */
export function rowByteSize(type: GgmlType | number, rowLength: number): number {
  const { blockSize, typeSize, name } = ggmlTypeInfo(type);
  if (rowLength % blockSize !== 0) {
    throw new RangeError(`a row of ${rowLength} elements is not a multiple of ${name}'s block size ${blockSize}`);
  }
  return (rowLength / blockSize) * typeSize;
}

/**
 * Bytes a tensor occupies in the file before alignment padding (ggml_nbytes for a contiguous
 * tensor). Sizes stay below 2^53 for any real model, so plain numbers are exact.
 */
export function tensorByteSize(type: GgmlType | number, shape: readonly number[]): number {
  if (shape.length === 0) return ggmlTypeInfo(type).typeSize;
  let rows = 1;
  for (let i = 1; i < shape.length; i++) rows *= shape[i];
  return rowByteSize(type, shape[0]) * rows;
}

/** Average bits per weight, e.g. 4.5 for Q4_K. */
export function bitsPerWeight(type: GgmlType | number): number {
  const { blockSize, typeSize } = ggmlTypeInfo(type);
  return (typeSize * 8) / blockSize;
}

/** `general.file_type` values (llama_ftype); only the ones Strata names are listed. */
export enum LlamaFileType {
  ALL_F32 = 0,
  MOSTLY_F16 = 1,
  MOSTLY_Q4_0 = 2,
  MOSTLY_Q4_1 = 3,
  MOSTLY_Q8_0 = 7,
  MOSTLY_Q5_0 = 8,
  MOSTLY_Q5_1 = 9,
  MOSTLY_Q2_K = 10,
  MOSTLY_Q3_K_S = 11,
  MOSTLY_Q3_K_M = 12,
  MOSTLY_Q3_K_L = 13,
  MOSTLY_Q4_K_S = 14,
  MOSTLY_Q4_K_M = 15,
  MOSTLY_Q5_K_S = 16,
  MOSTLY_Q5_K_M = 17,
  MOSTLY_Q6_K = 18,
  MOSTLY_IQ4_XS = 30,
  MOSTLY_BF16 = 32,
}
