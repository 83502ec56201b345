import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { GgmlType } from '../../../src/core/models/gguf/ggmlTypes';
import { metaArrayLength, metaNumber, metaString, readGgufHeader } from '../../../src/core/models/gguf/reader';
import { GgufMetadataValue, GgufValueType, gv } from '../../../src/core/models/gguf/values';
import { GgufTensorSpec, planGgufLayout, writeGguf } from '../../../src/core/models/gguf/writer';

const METADATA: Array<[string, GgufMetadataValue]> = [
  ['general.architecture', gv.str('qwen2')],
  ['t.u8', gv.u8(255)],
  ['t.i8', gv.i8(-128)],
  ['t.u16', gv.u16(65535)],
  ['t.i16', gv.i16(-32768)],
  ['t.u32', gv.u32(4294967295)],
  ['t.i32', gv.i32(-2147483648)],
  ['t.f32', gv.f32(Math.fround(1e-6))],
  ['t.f64', gv.f64(Math.PI)],
  ['t.bool', gv.bool(true)],
  ['t.u64', gv.u64(2n ** 64n - 1n)],
  ['t.i64', gv.i64(-(2n ** 63n))],
  ['t.str.unicode', gv.str('Ġhello ✓ 日本 🎉 <|fim_prefix|>')],
  ['t.str.empty', gv.str('')],
  ['t.arr.str', gv.strings(['a', '', 'Ċ', 'ü'.repeat(300)])],
  ['t.arr.i32', gv.numbers(GgufValueType.INT32, [1, -2, 3])],
  ['t.arr.f32', gv.numbers(GgufValueType.FLOAT32, [0.5, -1.25])],
  ['t.arr.u8', gv.numbers(GgufValueType.UINT8, [0, 255])],
  ['t.arr.u64', gv.bigints(GgufValueType.UINT64, [0n, 2n ** 40n])],
  ['t.arr.bool', gv.bools([true, false])],
  ['t.arr.empty', gv.strings([])],
];

const TENSORS: GgufTensorSpec[] = [
  { name: 'a.weight', shape: [3], type: GgmlType.F32 }, // 12 bytes: padding follows
  { name: 'b.weight', shape: [256, 2], type: GgmlType.Q4_K },
  { name: 'c.weight', shape: [32, 3, 2], type: GgmlType.Q8_0 },
  { name: 'd.weight', shape: [5, 7], type: GgmlType.F16 },
];

function bytesFor(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = (k * 31 + i * 7 + 1) & 0xff;
  return b;
}

describe('GGUF writer → reader', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-gguf-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips every metadata type, tensor infos and tensor bytes', async () => {
    const file = path.join(dir, 'rt.gguf');
    const layout = planGgufLayout({ metadata: METADATA, tensors: TENSORS });
    const res = await writeGguf(file, {
      metadata: METADATA,
      tensors: TENSORS,
      // Uneven chunks: the writer must stitch them at the right offsets.
      tensorData: (_t, i) => {
        const all = bytesFor(i, layout.tensors[i].byteSize);
        return [all.subarray(0, 5), all.subarray(5)];
      },
    });
    const h = await readGgufHeader(file);
    assert.strictEqual(h.version, 3);
    assert.strictEqual(h.alignment, 32);
    assert.deepStrictEqual([...h.metadata.entries()], METADATA);
    assert.strictEqual(h.fileSize, fs.statSync(file).size);
    assert.strictEqual(h.fileSize, res.fileSize);
    assert.strictEqual(h.dataOffset % 32, 0);
    assert.deepStrictEqual(
      h.tensors.map((t) => [t.name, t.shape, t.type, t.offset, t.byteSize]),
      [
        ['a.weight', [3], GgmlType.F32, 0, 12],
        ['b.weight', [256, 2], GgmlType.Q4_K, 32, 288],
        ['c.weight', [32, 3, 2], GgmlType.Q8_0, 320, 204],
        ['d.weight', [5, 7], GgmlType.F16, 544, 70],
      ],
    );
    assert.strictEqual(h.fileSize, h.dataOffset + 544 + 96, 'last tensor is padded too');
    const raw = fs.readFileSync(file);
    h.tensors.forEach((t, i) => {
      assert.ok(raw.subarray(t.fileOffset, t.fileOffset + t.byteSize).equals(bytesFor(i, t.byteSize)), t.name);
    });
    // padding is zeros
    assert.ok(raw.subarray(h.tensors[0].fileOffset + 12, h.tensors[1].fileOffset).every((b) => b === 0));
  });

  it('honours general.alignment', async () => {
    const file = path.join(dir, 'align.gguf');
    await writeGguf(file, { metadata: [['general.architecture', gv.str('x')]], tensors: TENSORS, alignment: 256 });
    const h = await readGgufHeader(file);
    assert.strictEqual(h.alignment, 256);
    assert.strictEqual(metaNumber(h, 'general.alignment'), 256);
    assert.strictEqual(h.dataOffset % 256, 0);
    assert.deepStrictEqual(
      h.tensors.map((t) => t.offset),
      [0, 256, 768, 1024],
    ); // b.weight is 288 bytes
    assert.throws(() => planGgufLayout({ metadata: [], tensors: [], alignment: 48 }), /not a power of 2/);
  });

  it('writes sparse files: full size, no disk', async function () {
    const file = path.join(dir, 'sparse.gguf');
    const big: GgufTensorSpec[] = [{ name: 'huge.weight', shape: [8192, 8192 * 16], type: GgmlType.Q4_K }];
    const res = await writeGguf(file, { metadata: [['general.architecture', gv.str('x')]], tensors: big });
    const st = fs.statSync(file);
    assert.strictEqual(st.size, res.fileSize);
    assert.ok(st.size > 600e6);
    if (process.platform !== 'win32') assert.ok(st.blocks * 512 < 1e6, `uses ${st.blocks * 512} bytes of disk`);
    assert.strictEqual(res.bytesWritten, 0);
    const h = await readGgufHeader(file);
    assert.strictEqual(h.tensors[0].byteSize, ((8192 * 8192 * 16) / 256) * 144);
  });

  it('refuses data that does not match the tensor size', async () => {
    const file = path.join(dir, 'bad.gguf');
    const t: GgufTensorSpec[] = [{ name: 'x', shape: [4], type: GgmlType.F32 }];
    await assert.rejects(writeGguf(file, { metadata: [], tensors: t, tensorData: () => [Buffer.alloc(15)] }), /tensor 'x' got 15 bytes of data, expected 16/);
    await assert.rejects(writeGguf(file, { metadata: [], tensors: t, tensorData: () => [Buffer.alloc(17)] }), /tensor 'x' got more than its 16 bytes/);
  });

  it('refuses what llama.cpp would refuse', () => {
    const ok: GgufTensorSpec = { name: 'x', shape: [256], type: GgmlType.Q4_K };
    assert.throws(() => planGgufLayout({ metadata: [], tensors: [ok, ok] }), /duplicate tensor name 'x'/);
    assert.throws(() => planGgufLayout({ metadata: [], tensors: [{ ...ok, shape: [100] }] }), /not a multiple of Q4_K's block size/);
    assert.throws(() => planGgufLayout({ metadata: [], tensors: [{ ...ok, name: 'n'.repeat(64) }] }), /must be 1..63 bytes/);
    assert.throws(
      () =>
        planGgufLayout({
          metadata: [
            ['k', gv.u8(1)],
            ['k', gv.u8(2)],
          ],
          tensors: [],
        }),
      /duplicate GGUF metadata key 'k'/,
    );
    assert.throws(() => planGgufLayout({ metadata: [['k', gv.u8(256)]], tensors: [] }), /256 is not a valid UINT8/);
    assert.throws(() => planGgufLayout({ metadata: [['k', gv.u32(-1)]], tensors: [] }), /is not a valid UINT32/);
  });

  it('can skip big arrays when only the hyper-parameters matter', async () => {
    const file = path.join(dir, 'skip.gguf');
    const tokens = Array.from({ length: 5000 }, (_, i) => `tok${i}`);
    await writeGguf(file, {
      metadata: [
        ['tokenizer.ggml.tokens', gv.strings(tokens)],
        ['after', gv.str('still read')],
        [
          'n',
          gv.numbers(
            GgufValueType.INT32,
            tokens.map((_, i) => i),
          ),
        ],
      ],
      tensors: [],
    });
    const h = await readGgufHeader(file, { maxArrayItems: 100 });
    assert.strictEqual(metaArrayLength(h, 'tokenizer.ggml.tokens'), 5000);
    assert.strictEqual(metaArrayLength(h, 'n'), 5000);
    assert.strictEqual(metaString(h, 'after'), 'still read');
  });

  it('writes files that an independent parser (@huggingface/gguf) reads the same way', async () => {
    const file = path.join(dir, 'hf.gguf');
    await writeGguf(file, { metadata: METADATA, tensors: TENSORS });
    const hf = await hfGguf(file, { allowLocalFile: true });
    // its metadata type only knows well-known keys
    const md = hf.metadata as unknown as Record<string, unknown>;
    assert.strictEqual(md['t.str.unicode'], 'Ġhello ✓ 日本 🎉 <|fim_prefix|>');
    assert.deepStrictEqual(md['t.arr.str'], ['a', '', 'Ċ', 'ü'.repeat(300)]);
    assert.strictEqual(md['t.u64'], 2n ** 64n - 1n);
    assert.deepStrictEqual(
      hf.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)]),
      [
        ['a.weight', [3], GgmlType.F32, 0],
        ['b.weight', [256, 2], GgmlType.Q4_K, 32],
        ['c.weight', [32, 3, 2], GgmlType.Q8_0, 320],
        ['d.weight', [5, 7], GgmlType.F16, 544],
      ],
    );
    const ours = await readGgufHeader(file);
    assert.strictEqual(hf.tensorDataOffset, BigInt(ours.dataOffset));
  });
});
