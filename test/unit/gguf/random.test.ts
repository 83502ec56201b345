import * as assert from 'assert';
import { Rng, f16BitsToF32, f32ToF16Bits } from '../../../src/core/models/synthetic/random';

describe('synthetic randomness', () => {
  it('gives the same stream for the same seed and name, different otherwise', () => {
    const take = (r: Rng) => Array.from({ length: 8 }, () => r.nextU32());
    assert.deepStrictEqual(take(new Rng(7, 'a')), take(new Rng(7, 'a')));
    assert.notDeepStrictEqual(take(new Rng(7, 'a')), take(new Rng(8, 'a')));
    assert.notDeepStrictEqual(take(new Rng(7, 'a')), take(new Rng(7, 'b')));
  });

  it('is pinned, so a seed means the same model on every machine and Node version', () => {
    const r = new Rng(1, 'token_embd.weight');
    assert.deepStrictEqual(
      Array.from({ length: 3 }, () => r.nextU32()),
      PINNED,
    );
  });

  it('stays in range', () => {
    const r = new Rng(3);
    for (let i = 0; i < 10000; i++) {
      const x = r.symmetric(0.5);
      assert.ok(x >= -0.5 && x < 0.5);
    }
  });

  it('converts to IEEE half with round-to-nearest-even', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [1e9, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -24, 0x0001],
      [2 ** -26, 0x0000],
      [2 ** -14, 0x0400],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
    ];
    for (const [v, bits] of cases) assert.strictEqual(f32ToF16Bits(v), bits, `f16(${v})`);
    assert.strictEqual(f32ToF16Bits(NaN) & 0x7c00, 0x7c00);
    assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))));
  });

  it('round-trips every finite half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      assert.strictEqual(f32ToF16Bits(f16BitsToF32(h)), h === 0x8000 ? 0x8000 : h);
    }
  });
});

const PINNED = [1844073319, 4084771093, 2461054781];
