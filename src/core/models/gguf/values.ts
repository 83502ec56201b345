// GGUF metadata values, shared by the writer and the reader so that what one writes the other
// gives back in the same shape (round trips compare with deepStrictEqual).

/** On-disk ids of GGUF metadata value types (gguf_type in ggml/include/gguf.h). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GgufNumberType =
  | GgufValueType.UINT8
  | GgufValueType.INT8
  | GgufValueType.UINT16
  | GgufValueType.INT16
  | GgufValueType.UINT32
  | GgufValueType.INT32
  | GgufValueType.FLOAT32
  | GgufValueType.FLOAT64;
/** 64-bit integers are bigints so that no value silently loses precision. */
export type GgufBigIntType = GgufValueType.UINT64 | GgufValueType.INT64;
export type GgufScalarType = GgufNumberType | GgufBigIntType | GgufValueType.BOOL | GgufValueType.STRING;

export type GgufScalarValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: GgufValueType.BOOL; value: boolean }
  | { type: GgufValueType.STRING; value: string };

/**
 * `skippedLength` is set only by the reader when asked to skip big arrays (a 150k-entry vocab is
 * not worth decoding to plan memory); `value` is then empty.
 */
export type GgufArrayValue = { type: GgufValueType.ARRAY; skippedLength?: number } & (
  | { itemType: GgufNumberType; value: readonly number[] }
  | { itemType: GgufBigIntType; value: readonly bigint[] }
  | { itemType: GgufValueType.BOOL; value: readonly boolean[] }
  | { itemType: GgufValueType.STRING; value: readonly string[] }
);

export type GgufMetadataValue = GgufScalarValue | GgufArrayValue;

export type GgufMetadataInput = Readonly<Record<string, GgufMetadataValue>> | Iterable<readonly [string, GgufMetadataValue]>;

/** Byte width of fixed-size scalar types; strings are variable. */
export function scalarByteWidth(type: GgufValueType): number | undefined {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    case GgufValueType.UINT64:
    case GgufValueType.INT64:
    case GgufValueType.FLOAT64:
      return 8;
    default:
      return undefined;
  }
}

export function isGgufValueType(n: number): n is GgufValueType {
  return Number.isInteger(n) && n >= 0 && n <= 12;
}

/** Terse constructors: `gv.u32(64)`, `gv.strings(tokens)`. */
export const gv = {
  u8: (value: number): GgufMetadataValue => ({ type: GgufValueType.UINT8, value }),
  i8: (value: number): GgufMetadataValue => ({ type: GgufValueType.INT8, value }),
  u16: (value: number): GgufMetadataValue => ({ type: GgufValueType.UINT16, value }),
  i16: (value: number): GgufMetadataValue => ({ type: GgufValueType.INT16, value }),
  u32: (value: number): GgufMetadataValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufMetadataValue => ({ type: GgufValueType.INT32, value }),
  f32: (value: number): GgufMetadataValue => ({ type: GgufValueType.FLOAT32, value }),
  f64: (value: number): GgufMetadataValue => ({ type: GgufValueType.FLOAT64, value }),
  u64: (value: bigint | number): GgufMetadataValue => ({ type: GgufValueType.UINT64, value: BigInt(value) }),
  i64: (value: bigint | number): GgufMetadataValue => ({ type: GgufValueType.INT64, value: BigInt(value) }),
  bool: (value: boolean): GgufMetadataValue => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufMetadataValue => ({ type: GgufValueType.STRING, value }),
  strings: (value: readonly string[]): GgufMetadataValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value }),
  numbers: (itemType: GgufNumberType, value: readonly number[]): GgufMetadataValue => ({ type: GgufValueType.ARRAY, itemType, value }),
  bigints: (itemType: GgufBigIntType, value: readonly bigint[]): GgufMetadataValue => ({ type: GgufValueType.ARRAY, itemType, value }),
  bools: (value: readonly boolean[]): GgufMetadataValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.BOOL, value }),
};

export function metadataEntries(input: GgufMetadataInput): Array<[string, GgufMetadataValue]> {
  if (Symbol.iterator in input) return Array.from(input as Iterable<readonly [string, GgufMetadataValue]>, ([k, v]) => [k, v]);
  return Object.entries(input as Record<string, GgufMetadataValue>);
}
