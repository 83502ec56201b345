import { InfillExtraChunk } from '../llama/client';
import { estimateTokens } from './tokenEstimate';

// Extra context for /infill (`input_extra`): chunks of code the user recently opened, edited,
// copied, selected or looked at, in other files or far away in the same one.
//
// llama-server puts these chunks at the very start of the prompt, so their order decides how much
// of the KV cache survives from one request to the next. The ring therefore changes only in idle
// time and only at its ends: new chunks wait in a queue while the user types; `update()` (called
// when the user pauses) appends one at the end and, when full, drops the oldest from the front.
// Appending leaves every token before it cached; dropping the front is a shift that
// llama-server's cache reuse (n_cache_reuse) recovers without recomputing. A chunk that is nearly
// the same as one already held (line-set similarity >= 0.9) is not added twice.

export type ChunkKind = 'open' | 'edit' | 'copy' | 'select' | 'view' | 'tab';

export interface Chunk {
  filename: string;
  text: string;
  kind: ChunkKind;
  /** Estimated tokens (filename line included). */
  tokens: number;
  /** Distinct trimmed non-blank lines, for similarity. */
  lineSet: Set<string>;
}

export interface ExtraContextOptions {
  /** Chunks in the ring (llama.vscode: 16). */
  maxChunks: number;
  /** Lines per chunk (llama.vscode: 64). */
  chunkLines: number;
  /** Characters per chunk line, for minified text. */
  maxLineChars: number;
  /** Chunks at least this similar are the same chunk. */
  similarity: number;
  /**
   * Stable order (default): append in idle time, evict from the front. Off: a naive
   * most-recent-first list updated at once (the benchmark's baseline).
   */
  stableOrder: boolean;
}

export const DEFAULT_EXTRA_OPTIONS: ExtraContextOptions = {
  maxChunks: 16,
  chunkLines: 64,
  maxLineChars: 400,
  similarity: 0.9,
  stableOrder: true,
};

const MAX_QUEUE = 16;

export class ExtraContext {
  private ring: Chunk[] = [];
  private queue: Chunk[] = [];
  /** Bumped whenever the chunk list sent to the server changes. */
  generation = 0;

  constructor(private opts: ExtraContextOptions = DEFAULT_EXTRA_OPTIONS) {}

  setOptions(opts: ExtraContextOptions): void {
    if (opts.maxChunks < this.ring.length) {
      this.ring.splice(0, this.ring.length - opts.maxChunks);
      this.generation++;
    }
    this.opts = opts;
  }

  /**
   * Offers lines (around `centerLine` of `lines`, at most chunkLines) as a chunk. Cheap: called
   * from editor events. Returns whether the chunk was queued.
   */
  pick(filename: string, lines: readonly string[], kind: ChunkKind): boolean {
    if (this.opts.maxChunks <= 0) return false;
    const text = lines
      .slice(0, this.opts.chunkLines)
      .map((l) => (l.length > this.opts.maxLineChars ? l.slice(0, this.opts.maxLineChars) : l))
      .join('\n');
    if (text.trim().length < 8 || text.indexOf('\0') >= 0) return false;
    const lineSet = new Set<string>();
    for (const l of text.split('\n')) {
      const t = l.trim();
      if (t) lineSet.add(t);
    }
    if (lineSet.size < 3) return false;
    const chunk: Chunk = {
      filename,
      text: text.endsWith('\n') ? text : text + '\n',
      kind,
      lineSet,
      tokens: estimateTokens(filename) + 2 + estimateTokens(text),
    };
    const near = (c: Chunk) => similarity(c.lineSet, lineSet) >= this.opts.similarity;
    if (!this.opts.stableOrder) {
      // Naive: most recent first, at once; a similar chunk moves to the front.
      this.ring = [chunk, ...this.ring.filter((c) => !near(c))].slice(0, this.opts.maxChunks);
      this.generation++;
      return true;
    }
    if (this.ring.some(near)) return false;
    this.queue = this.queue.filter((c) => !near(c));
    this.queue.push(chunk);
    if (this.queue.length > MAX_QUEUE) this.queue.shift();
    return true;
  }

  /** Moves one queued chunk into the ring (call in idle time). Returns whether the ring changed. */
  update(): boolean {
    const next = this.queue.shift();
    if (!next) return false;
    if (this.ring.some((c) => similarity(c.lineSet, next.lineSet) >= this.opts.similarity)) return this.queue.length > 0 ? this.update() : false;
    this.ring.push(next);
    if (this.ring.length > this.opts.maxChunks) this.ring.shift();
    this.generation++;
    return true;
  }

  get queued(): number {
    return this.queue.length;
  }

  get size(): number {
    return this.ring.length;
  }

  /**
   * The chunks to send, in ring order, within `budgetTokens`: when over budget the oldest are
   * left out (the front, as llama-server itself would cut; the rest stays a cache hit).
   */
  chunks(budgetTokens: number): InfillExtraChunk[] {
    let total = 0;
    let first = this.ring.length;
    while (first > 0 && total + this.ring[first - 1].tokens <= budgetTokens) {
      first--;
      total += this.ring[first].tokens;
    }
    const out: InfillExtraChunk[] = [];
    for (let i = first; i < this.ring.length; i++) out.push({ filename: this.ring[i].filename, text: this.ring[i].text });
    return out;
  }

  /** Forgets chunks of a file (deleted, or a file the user asked to exclude). */
  forget(filename: string): void {
    const before = this.ring.length;
    this.ring = this.ring.filter((c) => c.filename !== filename);
    this.queue = this.queue.filter((c) => c.filename !== filename);
    if (this.ring.length !== before) this.generation++;
  }

  clear(): void {
    if (this.ring.length) this.generation++;
    this.ring = [];
    this.queue = [];
  }

  describe(): { filename: string; kind: ChunkKind; tokens: number }[] {
    return this.ring.map((c) => ({ filename: c.filename, kind: c.kind, tokens: c.tokens }));
  }
}

/** Jaccard similarity of two line sets. */
export function similarity(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let common = 0;
  for (const x of small) if (large.has(x)) common++;
  return common / (a.size + b.size - common);
}

/** The chunkLines lines centred on `line` (clamped to the document). */
export function chunkAround(lineCount: number, line: number, chunkLines: number): { start: number; end: number } {
  const start = Math.max(0, Math.min(line - Math.floor(chunkLines / 2), lineCount - chunkLines));
  return { start, end: Math.min(lineCount, start + chunkLines) };
}
