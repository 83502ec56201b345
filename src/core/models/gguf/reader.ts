// GGUF header reader for local files. Our own rather than @huggingface/gguf: that one is built
// for HTTP range reads (it re-opens a local file for every 2 MB chunk, caps headers at 50 MB) and
// its errors are generic; here every failure is a GgufFormatError with one sentence naming the
// file and what is wrong, which is what a user meets when a download is cut short.
//
// Only the header is read (metadata + tensor infos); tensor data is checked for position and for
// fitting in the file, never loaded.

import * as fs from 'fs';
import * as path from 'path';
import { GgmlType, ggmlTypeInfo, ggmlTypeName, isKnownGgmlType, tensorByteSize } from './ggmlTypes';
import { GgufMetadataValue, GgufScalarType, GgufValueType, isGgufValueType, scalarByteWidth } from './values';
import { GGML_MAX_DIMS, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufTensorLayout, alignUp } from './writer';

/** A file that is not a usable GGUF; `message` is one sentence fit to show a user. */
export class GgufFormatError extends Error {
  override readonly name = 'GgufFormatError';
  constructor(
    readonly filePath: string,
    readonly kind: 'not-gguf' | 'unsupported-version' | 'truncated' | 'corrupt',
    detail: string,
  ) {
    super(`${path.basename(filePath)} ${detail}`);
  }
}

export interface GgufHeader {
  path: string;
  fileSize: number;
  version: number;
  alignment: number;
  metadata: Map<string, GgufMetadataValue>;
  tensors: GgufTensorLayout[];
  /** File offset of the data section (0 tensors: the header's end). */
  dataOffset: number;
  /** End of the last tensor's bytes, unpadded: the file must be at least this long. */
  dataEnd: number;
}

export interface ReadGgufOptions {
  /**
   * Arrays with more items than this are skipped (value [] and skippedLength set). A planner
   * needs the hyper-parameters, not the 150k-entry vocab. Default: read everything.
   */
  maxArrayItems?: number;
}

// Sanity bounds so that a corrupt count fails fast instead of allocating gigabytes.
const MAX_TENSORS = 1 << 20;
const MAX_KV = 1 << 20;
const CHUNK = 1 << 20;

export async function readGgufHeader(filePath: string, opts: ReadGgufOptions = {}): Promise<GgufHeader> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(filePath, 'r');
  } catch (e) {
    // Windows refuses to open a directory; Linux opens it and fails on read, handled below.
    if ((e as NodeJS.ErrnoException).code === 'EISDIR') throw new GgufFormatError(filePath, 'not-gguf', 'is a directory, not a GGUF file');
    throw e;
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new GgufFormatError(filePath, 'not-gguf', 'is a directory, not a GGUF file');
    const fileSize = st.size;
    const r = new Cursor(fh, fileSize, filePath);
    return await parse(r, filePath, fileSize, opts);
  } finally {
    await fh.close();
  }
}

async function parse(r: Cursor, filePath: string, fileSize: number, opts: ReadGgufOptions): Promise<GgufHeader> {
  const fail = (kind: GgufFormatError['kind'], detail: string) => new GgufFormatError(filePath, kind, detail);
  if (fileSize === 0) throw fail('not-gguf', 'is empty (0 bytes), not a GGUF file');
  if (fileSize < 4) throw fail('not-gguf', 'is not a GGUF file (bad magic)');
  await r.need(4);
  if (r.u32() !== GGUF_MAGIC) throw fail('not-gguf', 'is not a GGUF file (bad magic)');
  await r.need(4);
  const version = r.u32();
  if (version !== 2 && version !== 3) {
    // A byte-swapped version means a big-endian file, which llama.cpp on little-endian hosts refuses too.
    const hint = version > 0xffff ? ' (a big-endian file?)' : '';
    throw fail('unsupported-version', `uses GGUF version ${version}${hint}; only versions 2 and 3 are supported`);
  }
  await r.need(16);
  const nTensors = r.u64n('tensor count');
  const nKv = r.u64n('metadata count');
  if (nTensors > MAX_TENSORS) throw fail('corrupt', `is corrupt: it claims ${nTensors} tensors`);
  if (nKv > MAX_KV) throw fail('corrupt', `is corrupt: it claims ${nKv} metadata entries`);

  const metadata = new Map<string, GgufMetadataValue>();
  for (let i = 0; i < nKv; i++) {
    const key = await r.str();
    if (metadata.has(key)) throw fail('corrupt', `is corrupt: metadata key '${key}' appears twice`);
    await r.need(4);
    const type = r.u32();
    if (!isGgufValueType(type)) throw fail('corrupt', `is corrupt: metadata '${key}' has unknown value type ${type}`);
    metadata.set(key, await readValue(r, key, type, opts.maxArrayItems ?? Infinity));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignValue = metadata.get('general.alignment');
  if (alignValue) {
    if (alignValue.type !== GgufValueType.UINT32 || alignValue.value === 0 || (alignValue.value & (alignValue.value - 1)) !== 0) {
      throw fail('corrupt', `is corrupt: general.alignment is not a power of 2`);
    }
    alignment = alignValue.value;
  }

  const tensors: GgufTensorLayout[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = await r.str();
    if (names.has(name)) throw fail('corrupt', `is corrupt: tensor '${name}' appears twice`);
    names.add(name);
    await r.need(4);
    const nDims = r.u32();
    if (nDims < 1 || nDims > GGML_MAX_DIMS) throw fail('corrupt', `is corrupt: tensor '${name}' has ${nDims} dimensions`);
    await r.need(8 * nDims + 12);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) shape.push(r.u64n(`tensor '${name}' dimension`));
    const type = r.u32();
    const offset = r.u64n(`tensor '${name}' offset`);
    if (!isKnownGgmlType(type)) throw fail('corrupt', `is corrupt: tensor '${name}' has unknown ggml type ${type}`);
    const { blockSize } = ggmlTypeInfo(type);
    if (shape[0] % blockSize !== 0) {
      throw fail('corrupt', `is corrupt: tensor '${name}' rows of ${shape[0]} do not fit ${ggmlTypeName(type)} blocks of ${blockSize}`);
    }
    const byteSize = tensorByteSize(type, shape);
    if (!Number.isSafeInteger(byteSize)) throw fail('corrupt', `is corrupt: tensor '${name}' is impossibly large`);
    tensors.push({ name, shape, type: type as GgmlType, offset, fileOffset: 0, byteSize });
  }

  const headerEnd = r.position;
  const dataOffset = tensors.length ? alignUp(headerEnd, alignment) : headerEnd;
  let expected = 0;
  for (const t of tensors) {
    // llama.cpp (gguf.cpp) insists on exactly this packing, so anything else is corruption.
    if (t.offset !== expected) {
      throw fail('corrupt', `is corrupt: tensor '${t.name}' starts at data offset ${t.offset}, expected ${expected}`);
    }
    t.fileOffset = dataOffset + t.offset;
    expected += alignUp(t.byteSize, alignment);
  }
  const last = tensors[tensors.length - 1];
  const dataEnd = last ? last.fileOffset + last.byteSize : headerEnd;
  if (dataEnd > fileSize) {
    throw fail('truncated', `is truncated: tensor data ends at ${dataEnd} bytes but the file has ${fileSize}`);
  }
  return { path: filePath, fileSize, version, alignment, metadata, tensors, dataOffset, dataEnd };
}

async function readValue(r: Cursor, key: string, type: GgufValueType, maxArrayItems: number): Promise<GgufMetadataValue> {
  if (type !== GgufValueType.ARRAY) {
    return { type, value: await readScalar(r, type) } as GgufMetadataValue;
  }
  await r.need(12);
  const itemType = r.u32();
  const length = r.u64n(`length of '${key}'`);
  if (!isGgufValueType(itemType) || itemType === GgufValueType.ARRAY) {
    // Nested arrays are legal GGUF but no model uses them and llama.cpp cannot read them back.
    throw new GgufFormatError(r.filePath, 'corrupt', `is corrupt: metadata '${key}' is an array of unsupported type ${itemType}`);
  }
  const width = scalarByteWidth(itemType);
  // Each item takes at least one byte (strings: 8 for the length), so a length beyond the rest of the file is a lie.
  const minBytes = length * (width ?? 8);
  if (r.position + minBytes > r.fileSize) {
    throw new GgufFormatError(r.filePath, 'truncated', `is truncated: the header runs past the end of the file (${r.fileSize} bytes)`);
  }
  if (length > maxArrayItems) {
    if (width !== undefined) r.skip(minBytes);
    else for (let i = 0; i < length; i++) await r.skipStr();
    return { type, itemType, value: [], skippedLength: length } as GgufMetadataValue;
  }
  const items: unknown[] = new Array(length);
  for (let i = 0; i < length; i++) items[i] = await readScalar(r, itemType);
  return { type, itemType, value: items } as GgufMetadataValue;
}

async function readScalar(r: Cursor, type: GgufScalarType): Promise<number | bigint | boolean | string> {
  if (type === GgufValueType.STRING) return r.str();
  const width = scalarByteWidth(type)!;
  if (!r.has(width)) await r.need(width);
  const b = r.take(width);
  switch (type) {
    case GgufValueType.UINT8:
      return b.readUInt8(0);
    case GgufValueType.INT8:
      return b.readInt8(0);
    case GgufValueType.UINT16:
      return b.readUInt16LE(0);
    case GgufValueType.INT16:
      return b.readInt16LE(0);
    case GgufValueType.UINT32:
      return b.readUInt32LE(0);
    case GgufValueType.INT32:
      return b.readInt32LE(0);
    case GgufValueType.FLOAT32:
      return b.readFloatLE(0);
    case GgufValueType.FLOAT64:
      return b.readDoubleLE(0);
    case GgufValueType.BOOL:
      return b.readUInt8(0) !== 0;
    case GgufValueType.UINT64:
      return b.readBigUInt64LE(0);
    case GgufValueType.INT64:
      return b.readBigInt64LE(0);
  }
}

/** Sequential reader over a file handle with a 1 MB window; `need` before every fixed-size read. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  position = 0;

  constructor(
    private readonly fh: fs.promises.FileHandle,
    readonly fileSize: number,
    readonly filePath: string,
  ) {}

  /** True when the next n bytes are already buffered: lets hot paths skip an await per value. */
  has(n: number): boolean {
    return this.position >= this.bufStart && this.position + n <= this.bufStart + this.buf.length;
  }

  async need(n: number): Promise<void> {
    if (this.position + n > this.fileSize) {
      throw new GgufFormatError(this.filePath, 'truncated', `is truncated: the header runs past the end of the file (${this.fileSize} bytes)`);
    }
    if (this.has(n)) return;
    const len = Math.min(Math.max(n, CHUNK), this.fileSize - this.position);
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await this.fh.read(buf, got, len - got, this.position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got < n) {
      throw new GgufFormatError(this.filePath, 'truncated', `is truncated: the header runs past the end of the file (${this.position + got} bytes)`);
    }
    this.buf = buf.subarray(0, got);
    this.bufStart = this.position;
  }

  take(n: number): Buffer {
    const at = this.position - this.bufStart;
    this.position += n;
    return this.buf.subarray(at, at + n);
  }

  skip(n: number): void {
    this.position += n;
  }

  u32(): number {
    return this.take(4).readUInt32LE(0);
  }

  /** A u64 that must fit a JS number (counts, dimensions, offsets). */
  u64n(what: string): number {
    const v = this.take(8).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new GgufFormatError(this.filePath, 'corrupt', `is corrupt: ${what} is ${v}`);
    }
    return Number(v);
  }

  async str(): Promise<string> {
    const len = this.has(8) ? this.strLenBuffered() : await this.strLen();
    if (!this.has(len)) await this.need(len);
    return this.take(len).toString('utf8');
  }

  async skipStr(): Promise<void> {
    const len = this.has(8) ? this.strLenBuffered() : await this.strLen();
    if (!this.has(len)) await this.need(len);
    this.skip(len);
  }

  private async strLen(): Promise<number> {
    await this.need(8);
    return this.strLenBuffered();
  }

  /** A string's length; one that reaches past the end of the file means a cut (or garbage) header. */
  private strLenBuffered(): number {
    const big = this.take(8).readBigUInt64LE(0);
    const len = Number(big);
    if (big > BigInt(Number.MAX_SAFE_INTEGER) || this.position + len > this.fileSize) {
      throw new GgufFormatError(this.filePath, 'truncated', `is truncated: the header runs past the end of the file (${this.fileSize} bytes)`);
    }
    return len;
  }
}

// Typed accessors: the planner wants "a number or nothing", whatever integer width was used.

export function metaNumber(h: Pick<GgufHeader, 'metadata'>, key: string): number | undefined {
  const v = h.metadata.get(key);
  if (!v || v.type === GgufValueType.ARRAY) return undefined;
  if (typeof v.value === 'number') return v.value;
  if (typeof v.value === 'bigint') return Number(v.value);
  return undefined;
}

export function metaString(h: Pick<GgufHeader, 'metadata'>, key: string): string | undefined {
  const v = h.metadata.get(key);
  return v && v.type === GgufValueType.STRING ? v.value : undefined;
}

export function metaBool(h: Pick<GgufHeader, 'metadata'>, key: string): boolean | undefined {
  const v = h.metadata.get(key);
  return v && v.type === GgufValueType.BOOL ? v.value : undefined;
}

export function metaArrayLength(h: Pick<GgufHeader, 'metadata'>, key: string): number | undefined {
  const v = h.metadata.get(key);
  if (!v || v.type !== GgufValueType.ARRAY) return undefined;
  return v.skippedLength ?? v.value.length;
}

/** Total weights and tensor bytes: what a planner needs before any hyper-parameter. */
export function summarizeTensors(h: Pick<GgufHeader, 'tensors'>): { parameters: number; bytes: number } {
  let parameters = 0;
  let bytes = 0;
  for (const t of h.tensors) {
    parameters += t.shape.reduce((a, b) => a * b, 1);
    bytes += t.byteSize;
  }
  return { parameters, bytes };
}
