// GGUF v3 writer (little-endian). The header is built in memory (even a 150k-token vocab is only
// a few MB); tensor data is streamed chunk by chunk to its final offset, so a 40 GB file never
// needs a 40 GB buffer. Tensors given no data are left as holes: with `ftruncate` to the full
// size the file has its real length, reads back as zeros and takes no disk ("sparse").
//
// Layout rules follow ggml/src/gguf.cpp, which rejects anything else: tensor offsets are relative
// to the data section, each tensor starts where the previous one's padded size ends, and the data
// section starts at the header size rounded up to `general.alignment` (default 32).

import * as fs from 'fs';
import { GgmlType, ggmlTypeInfo, isKnownGgmlType, tensorByteSize } from './ggmlTypes';
import { GgufMetadataInput, GgufMetadataValue, GgufScalarType, GgufValueType, metadataEntries } from './values';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** GGML_MAX_NAME: llama.cpp refuses tensor names of this length or more. */
export const GGML_MAX_NAME = 64;
export const GGML_MAX_DIMS = 4;

export interface GgufTensorSpec {
  name: string;
  /** ggml order: shape[0] is the row length (ne[0]). */
  shape: readonly number[];
  type: GgmlType;
}

export interface GgufTensorLayout extends GgufTensorSpec {
  /** Offset from the start of the data section, as stored in the file. */
  offset: number;
  /** Offset from the start of the file. */
  fileOffset: number;
  byteSize: number;
}

export type TensorData = Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

export interface GgufWriteSpec {
  metadata: GgufMetadataInput;
  tensors: readonly GgufTensorSpec[];
  /** Used when metadata has no `general.alignment`; a value other than 32 is then added as that key. */
  alignment?: number;
}

export interface GgufWriteOptions extends GgufWriteSpec {
  /**
   * Each tensor's bytes, in chunks of any size that add up to exactly its byte size. Omitted, or
   * returning undefined for a tensor: that tensor is a hole in a sparse file (reads as zeros).
   */
  tensorData?: (tensor: GgufTensorSpec, index: number) => TensorData | undefined;
}

export interface GgufLayout {
  header: Buffer;
  alignment: number;
  dataOffset: number;
  tensors: GgufTensorLayout[];
  /** Data offset plus every tensor's padded size: the length of the finished file. */
  fileSize: number;
}

export interface GgufWriteResult extends Omit<GgufLayout, 'header'> {
  path: string;
  /** Bytes of tensor data actually written (the rest are holes). */
  bytesWritten: number;
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Computes the header bytes and where every tensor goes, without touching the disk. */
export function planGgufLayout(spec: GgufWriteSpec): GgufLayout {
  const entries = metadataEntries(spec.metadata);
  const keys = new Set<string>();
  for (const [key] of entries) {
    if (!key) throw new Error('GGUF metadata keys must not be empty');
    if (keys.has(key)) throw new Error(`duplicate GGUF metadata key '${key}'`);
    keys.add(key);
  }

  let alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const alignEntry = entries.find(([k]) => k === 'general.alignment');
  if (alignEntry) {
    const [, v] = alignEntry;
    if (v.type !== GgufValueType.UINT32) throw new Error('general.alignment must be a UINT32');
    if (spec.alignment !== undefined && spec.alignment !== v.value) {
      throw new Error(`alignment ${spec.alignment} contradicts general.alignment ${v.value}`);
    }
    alignment = v.value;
  } else if (alignment !== GGUF_DEFAULT_ALIGNMENT) {
    entries.push(['general.alignment', { type: GgufValueType.UINT32, value: alignment }]);
  }
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`GGUF alignment ${alignment} is not a power of 2`);
  }

  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(3);
  sink.u64(spec.tensors.length);
  sink.u64(entries.length);
  for (const [key, value] of entries) {
    sink.str(key);
    writeValue(sink, key, value);
  }

  const names = new Set<string>();
  const tensors: GgufTensorLayout[] = [];
  let offset = 0;
  for (const t of spec.tensors) {
    validateTensor(t, names);
    const byteSize = tensorByteSize(t.type, t.shape);
    sink.str(t.name);
    sink.u32(t.shape.length);
    for (const d of t.shape) sink.u64(d);
    sink.u32(t.type);
    sink.u64(offset);
    tensors.push({ name: t.name, shape: [...t.shape], type: t.type, offset, fileOffset: 0, byteSize });
    offset += alignUp(byteSize, alignment);
  }

  const header = sink.finish();
  const dataOffset = alignUp(header.length, alignment);
  for (const t of tensors) t.fileOffset = dataOffset + t.offset;
  // With no tensors llama.cpp does not seek to an aligned data section, so neither do we.
  const fileSize = tensors.length === 0 ? header.length : dataOffset + offset;
  return { header, alignment, dataOffset, tensors, fileSize };
}

/** Writes a GGUF file at `path` (replacing it). Not atomic: callers that race write to a temp name and rename. */
export async function writeGguf(path: string, opts: GgufWriteOptions): Promise<GgufWriteResult> {
  const layout = planGgufLayout(opts);
  const fh = await fs.promises.open(path, 'w');
  let bytesWritten = 0;
  try {
    await writeFully(fh, layout.header, 0);
    for (let i = 0; i < layout.tensors.length; i++) {
      const t = layout.tensors[i];
      const data = opts.tensorData?.(opts.tensors[i], i);
      if (data === undefined) continue;
      let pos = t.fileOffset;
      const end = t.fileOffset + t.byteSize;
      for await (const chunk of data) {
        if (pos + chunk.byteLength > end) {
          throw new Error(`tensor '${t.name}' got more than its ${t.byteSize} bytes of data`);
        }
        await writeFully(fh, chunk, pos);
        pos += chunk.byteLength;
      }
      if (pos !== end) {
        throw new Error(`tensor '${t.name}' got ${pos - t.fileOffset} bytes of data, expected ${t.byteSize}`);
      }
      bytesWritten += t.byteSize;
    }
    // Padding and unwritten tensors become holes; this also gives the file its exact final size.
    await fh.truncate(layout.fileSize);
  } finally {
    await fh.close();
  }
  return {
    path,
    alignment: layout.alignment,
    dataOffset: layout.dataOffset,
    tensors: layout.tensors,
    fileSize: layout.fileSize,
    bytesWritten,
  };
}

async function writeFully(fh: fs.promises.FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, done, buf.byteLength - done, position + done);
    done += bytesWritten;
  }
}

function validateTensor(t: GgufTensorSpec, names: Set<string>): void {
  if (!t.name || Buffer.byteLength(t.name) >= GGML_MAX_NAME) {
    throw new Error(`tensor name '${t.name}' must be 1..${GGML_MAX_NAME - 1} bytes`);
  }
  if (names.has(t.name)) throw new Error(`duplicate tensor name '${t.name}'`);
  names.add(t.name);
  if (t.shape.length < 1 || t.shape.length > GGML_MAX_DIMS) {
    throw new Error(`tensor '${t.name}' has ${t.shape.length} dimensions; GGUF allows 1..${GGML_MAX_DIMS}`);
  }
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`tensor '${t.name}' has invalid dimension ${d}`);
  }
  if (!isKnownGgmlType(t.type)) throw new Error(`tensor '${t.name}' has unknown ggml type ${t.type}`);
  const { blockSize, name } = ggmlTypeInfo(t.type);
  if (t.shape[0] % blockSize !== 0) {
    throw new Error(`tensor '${t.name}' row length ${t.shape[0]} is not a multiple of ${name}'s block size ${blockSize}`);
  }
}

function writeValue(sink: ByteSink, key: string, v: GgufMetadataValue): void {
  sink.u32(v.type);
  if (v.type !== GgufValueType.ARRAY) {
    writeScalar(sink, key, v.type, v.value);
    return;
  }
  if (v.skippedLength !== undefined) {
    throw new Error(`metadata '${key}' was read with its array skipped and cannot be written back`);
  }
  if ((v.itemType as GgufValueType) === GgufValueType.ARRAY) {
    throw new Error(`metadata '${key}': nested arrays are not supported`);
  }
  sink.u32(v.itemType);
  sink.u64(v.value.length);
  for (const item of v.value) writeScalar(sink, key, v.itemType, item);
}

function writeScalar(sink: ByteSink, key: string, type: GgufScalarType, value: unknown): void {
  const bad = (): never => {
    throw new Error(`metadata '${key}': ${String(value)} is not a valid ${GgufValueType[type]}`);
  };
  const int = (min: number, max: number): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) bad();
    return value as number;
  };
  switch (type) {
    case GgufValueType.UINT8:
      sink.fixed(1, (b, o) => b.writeUInt8(int(0, 0xff), o));
      break;
    case GgufValueType.INT8:
      sink.fixed(1, (b, o) => b.writeInt8(int(-0x80, 0x7f), o));
      break;
    case GgufValueType.UINT16:
      sink.fixed(2, (b, o) => b.writeUInt16LE(int(0, 0xffff), o));
      break;
    case GgufValueType.INT16:
      sink.fixed(2, (b, o) => b.writeInt16LE(int(-0x8000, 0x7fff), o));
      break;
    case GgufValueType.UINT32:
      sink.fixed(4, (b, o) => b.writeUInt32LE(int(0, 0xffffffff), o));
      break;
    case GgufValueType.INT32:
      sink.fixed(4, (b, o) => b.writeInt32LE(int(-0x80000000, 0x7fffffff), o));
      break;
    case GgufValueType.FLOAT32:
      if (typeof value !== 'number') bad();
      sink.fixed(4, (b, o) => b.writeFloatLE(value as number, o));
      break;
    case GgufValueType.FLOAT64:
      if (typeof value !== 'number') bad();
      sink.fixed(8, (b, o) => b.writeDoubleLE(value as number, o));
      break;
    case GgufValueType.BOOL:
      if (typeof value !== 'boolean') bad();
      sink.fixed(1, (b, o) => b.writeUInt8(value ? 1 : 0, o));
      break;
    case GgufValueType.UINT64:
      if (typeof value !== 'bigint' || value < 0n || value >= 1n << 64n) bad();
      sink.fixed(8, (b, o) => b.writeBigUInt64LE(value as bigint, o));
      break;
    case GgufValueType.INT64:
      if (typeof value !== 'bigint' || value < -(1n << 63n) || value >= 1n << 63n) bad();
      sink.fixed(8, (b, o) => b.writeBigInt64LE(value as bigint, o));
      break;
    case GgufValueType.STRING:
      if (typeof value !== 'string') bad();
      sink.str(value as string);
      break;
    default:
      throw new Error(`metadata '${key}': unknown value type ${type as number}`);
  }
}

/** Append-only byte buffer that grows in chunks, so that headers of any size cost one copy. */
class ByteSink {
  private chunks: Buffer[] = [];
  private cur = Buffer.allocUnsafe(1 << 16);
  private pos = 0;

  fixed(n: number, put: (b: Buffer, offset: number) => void): void {
    this.reserve(n);
    put(this.cur, this.pos);
    this.pos += n;
  }
  u32(v: number): void {
    this.reserve(4);
    this.cur.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  /** Counts and lengths: safe integers, written as two halves (BigInt per string is slow for 300k strings). */
  u64(v: number): void {
    this.reserve(8);
    this.cur.writeUInt32LE(v % 0x100000000, this.pos);
    this.cur.writeUInt32LE(Math.floor(v / 0x100000000), this.pos + 4);
    this.pos += 8;
  }
  str(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.u64(len);
    this.reserve(len);
    this.cur.write(s, this.pos, 'utf8');
    this.pos += len;
  }
  finish(): Buffer {
    this.chunks.push(this.cur.subarray(0, this.pos));
    const out = Buffer.concat(this.chunks);
    this.chunks = [];
    this.cur = Buffer.alloc(0);
    this.pos = 0;
    return out;
  }
  private reserve(n: number): void {
    if (this.pos + n <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.pos));
    this.cur = Buffer.allocUnsafe(Math.max(1 << 16, n));
    this.pos = 0;
  }
}
