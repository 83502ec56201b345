import * as assert from 'assert';
import { GgmlType, bitsPerWeight, ggmlTypeFromName, ggmlTypeInfo, ggmlTypeName, rowByteSize, tensorByteSize } from '../../../src/core/models/gguf/ggmlTypes';

describe('ggml types', () => {
  it('has the block geometry of llama.cpp (block elements, bytes per block)', () => {
    const expected: Array<[GgmlType, number, number]> = [
      [GgmlType.F32, 1, 4],
      [GgmlType.F16, 1, 2],
      [GgmlType.BF16, 1, 2],
      [GgmlType.Q4_0, 32, 18],
      [GgmlType.Q4_1, 32, 20],
      [GgmlType.Q5_0, 32, 22],
      [GgmlType.Q5_1, 32, 24],
      [GgmlType.Q8_0, 32, 34],
      [GgmlType.Q2_K, 256, 84],
      [GgmlType.Q3_K, 256, 110],
      [GgmlType.Q4_K, 256, 144],
      [GgmlType.Q5_K, 256, 176],
      [GgmlType.Q6_K, 256, 210],
      [GgmlType.Q8_K, 256, 292],
      [GgmlType.IQ4_XS, 256, 136],
      [GgmlType.IQ4_NL, 32, 18],
      [GgmlType.MXFP4, 32, 17],
    ];
    for (const [type, block, bytes] of expected) {
      const info = ggmlTypeInfo(type);
      assert.deepStrictEqual([info.name, info.blockSize, info.typeSize], [GgmlType[type], block, bytes]);
    }
  });

  it('gives the familiar bits per weight', () => {
    assert.strictEqual(bitsPerWeight(GgmlType.Q4_K), 4.5);
    assert.strictEqual(bitsPerWeight(GgmlType.Q5_K), 5.5);
    assert.strictEqual(bitsPerWeight(GgmlType.Q6_K), 6.5625);
    assert.strictEqual(bitsPerWeight(GgmlType.Q8_0), 8.5);
    assert.strictEqual(bitsPerWeight(GgmlType.F16), 16);
  });

  it('computes tensor byte sizes as ggml_nbytes does', () => {
    assert.strictEqual(tensorByteSize(GgmlType.Q4_K, [4096, 4096]), ((4096 * 4096) / 256) * 144);
    assert.strictEqual(tensorByteSize(GgmlType.Q6_K, [5120, 152064]), (5120 / 256) * 210 * 152064);
    assert.strictEqual(tensorByteSize(GgmlType.Q8_0, [8192, 1024]), (8192 / 32) * 34 * 1024);
    assert.strictEqual(tensorByteSize(GgmlType.F32, [5120]), 20480);
    assert.strictEqual(tensorByteSize(GgmlType.F16, [64, 3, 2]), 64 * 3 * 2 * 2);
    assert.strictEqual(rowByteSize(GgmlType.Q4_0, 64), 36);
    // 70B's largest tensor (Q8_0 output) stays exact in a double
    assert.ok(Number.isSafeInteger(tensorByteSize(GgmlType.Q8_0, [8192, 128256])));
  });

  it('refuses rows that are not whole blocks', () => {
    assert.throws(() => tensorByteSize(GgmlType.Q4_K, [100, 4]), /not a multiple of Q4_K's block size 256/);
    assert.throws(() => ggmlTypeInfo(4), /unknown ggml type 4/);
  });

  it('maps names both ways', () => {
    assert.strictEqual(ggmlTypeFromName('q6_k'), GgmlType.Q6_K);
    assert.strictEqual(ggmlTypeName(GgmlType.BF16), 'BF16');
    assert.strictEqual(ggmlTypeName(99), 'type#99');
  });
});
