// A simulated developer typing text with realistic timing: a seeded log-normal gap between
// keys (median 140 ms, about 85 words a minute), longer after words and at line ends, a
// thinking pause now and then, typos noticed and fixed with Backspace, and the editor's
// auto-indent after Enter. Deterministic for a seed, so baseline and reuse runs replay the very
// same keystrokes.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Keystroke {
  /** Text inserted at the cursor ('' with backspace). */
  insert: string;
  backspace?: boolean;
  /** Milliseconds until the next keystroke. */
  gapMs: number;
  /** Characters of the target text this keystroke completes (0 for a typo and its fix). */
  advances: number;
}

export interface TypistOptions {
  medianGapMs: number;
  typoRate: number;
  thinkRate: number;
}

export const DEFAULT_TYPIST: TypistOptions = { medianGapMs: 140, typoRate: 0.02, thinkRate: 0.06 };

const NEIGHBOURS = 'qwertyuiopasdfghjklzxcvbnm';

export class Typist {
  private readonly rnd: () => number;
  private pendingFix: Keystroke[] = [];

  constructor(
    seed: number,
    private readonly opts: TypistOptions = DEFAULT_TYPIST,
  ) {
    this.rnd = mulberry32(seed);
  }

  private normal(): number {
    const u = Math.max(1e-9, this.rnd());
    const v = this.rnd();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  private logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /**
   * The next keystroke towards typing `remaining` (the rest of the target text from the
   * cursor). Enter carries the next line's indentation (auto-indent).
   */
  next(remaining: string): Keystroke | undefined {
    if (this.pendingFix.length) return this.pendingFix.shift();
    if (remaining.length === 0) return undefined;
    const ch = remaining[0];
    if (ch === '\n') {
      const indent = /^\n[ \t]*/.exec(remaining)![0];
      let gap = this.logNormal(600, 0.6);
      if (this.rnd() < this.opts.thinkRate) gap += 2000 + 4000 * this.rnd();
      return { insert: indent, gapMs: clamp(gap, 150, 8000), advances: indent.length };
    }
    let gap = this.logNormal(this.opts.medianGapMs, 0.45);
    if (ch === ' ' || /[.,;:(){}[\]]/.test(ch)) gap += 40 * this.rnd() + 20;
    gap = clamp(gap, 40, 1500);
    if (/[a-z]/i.test(ch) && this.rnd() < this.opts.typoRate) {
      const wrong = NEIGHBOURS[Math.floor(this.rnd() * NEIGHBOURS.length)];
      if (wrong !== ch.toLowerCase()) {
        // Typed, noticed after a moment, erased, then the right key.
        this.pendingFix.push({ insert: '', backspace: true, gapMs: clamp(this.logNormal(160, 0.3), 60, 600), advances: 0 });
        this.pendingFix.push({ insert: ch, gapMs: gap, advances: 1 });
        return { insert: wrong, gapMs: clamp(this.logNormal(350, 0.3), 150, 1200), advances: 0 };
      }
    }
    return { insert: ch, gapMs: gap, advances: 1 };
  }

  /** Drops a pending typo fix (the simulated user accepted a suggestion instead). */
  get busy(): boolean {
    return this.pendingFix.length > 0;
  }

  random(): number {
    return this.rnd();
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
