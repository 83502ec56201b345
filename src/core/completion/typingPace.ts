// How fast the user types, for the debounce: while they type faster than it, waiting a little
// longer saves the server prefills that the next keystroke would cancel anyway.

export class TypingPace {
  private readonly keyTimes: number[] = [];

  keystroke(at: number): void {
    this.keyTimes.push(at);
    if (this.keyTimes.length > 9) this.keyTimes.shift();
  }

  /** `base` (the setting), or up to 250 ms more while the user types faster than that (1.5 × their median recent gap). */
  debounceMs(base: number): number {
    if (this.keyTimes.length < 5) return base;
    const gaps: number[] = [];
    for (let i = 1; i < this.keyTimes.length; i++) {
      const g = this.keyTimes[i] - this.keyTimes[i - 1];
      if (g < 1000) gaps.push(g);
    }
    if (gaps.length < 4) return base;
    gaps.sort((a, b) => a - b);
    const median = gaps[gaps.length >> 1];
    return Math.round(Math.min(base + 250, Math.max(base, 1.5 * median)));
  }
}
