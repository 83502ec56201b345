// Deterministic random numbers for synthetic weights. Only 32-bit integer ops (Math.imul, >>>),
// so the same seed gives the same bits on every platform and Node version; Math.random is never
// used. Each tensor gets its own stream derived from (seed, tensor name), so adding or reordering
// tensors does not change the others' bytes.

/** FNV-1a over UTF-16 code units; only used to turn names into stream ids. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** xoshiro128** : small, fast, and good enough that random weights look like noise. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = '') {
    const st = { s: (seed ^ hash32(stream)) | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9);
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [-a, a). */
  symmetric(a: number): number {
    return (this.next() * 2 - 1) * a;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

/** IEEE half from a JS number, round to nearest even (what numpy's astype(float16) does). */
export function f32ToF16Bits(v: number): number {
  f32Buf[0] = v;
  const x = u32Buf[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Yields `count` values as little-endian F16 or F32 bytes in chunks of at most ~1 MB, so a
 * tensor of any size streams through a fixed buffer.
 */
export function* floatChunks(count: number, type: 'F16' | 'F32', value: (i: number) => number): Generator<Uint8Array> {
  const width = type === 'F16' ? 2 : 4;
  const perChunk = Math.max(1, Math.floor((1 << 20) / width));
  for (let start = 0; start < count; start += perChunk) {
    const n = Math.min(perChunk, count - start);
    const buf = Buffer.allocUnsafe(n * width);
    if (type === 'F16') {
      for (let i = 0; i < n; i++) buf.writeUInt16LE(f32ToF16Bits(value(start + i)), i * 2);
    } else {
      for (let i = 0; i < n; i++) buf.writeFloatLE(value(start + i), i * 4);
    }
    yield buf;
  }
}
