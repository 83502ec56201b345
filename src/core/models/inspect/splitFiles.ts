// Multi-part GGUFs ("model-00001-of-00003.gguf", written by llama-gguf-split and published that
// way for anything over the hub's 50 GB file limit). llama.cpp loads them from the first part;
// everywhere in Strata they count as one model whose size is the sum of the parts.

import * as path from 'path';

const SPLIT_RE = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

export interface SplitName {
  /** Name without the "-0000N-of-0000M.gguf" suffix. */
  stem: string;
  /** 1-based. */
  index: number;
  count: number;
}

export function parseSplitName(fileName: string): SplitName | undefined {
  const m = SPLIT_RE.exec(path.basename(fileName));
  if (!m) return undefined;
  const index = Number(m[2]);
  const count = Number(m[3]);
  if (index < 1 || count < 1 || index > count) return undefined;
  return { stem: m[1], index, count };
}

/** The file name of part `index` (1-based) of `count`, as llama-gguf-split names them. */
export function splitPartName(stem: string, index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${stem}-${pad(index)}-of-${pad(count)}.gguf`;
}

/** All part paths of the model `anyPart` belongs to (itself alone when it is not split). */
export function splitPartPaths(anyPart: string): string[] {
  const s = parseSplitName(anyPart);
  if (!s) return [anyPart];
  const dir = path.dirname(anyPart);
  return Array.from({ length: s.count }, (_, i) => path.join(dir, splitPartName(s.stem, i + 1, s.count)));
}

/**
 * Groups file names into models: single files as they are, split files by stem, keyed by the
 * first part. Parts of an incomplete set are returned under `incomplete` so a scan can say so
 * instead of offering a model that cannot load.
 */
export function groupSplitFiles(files: readonly string[]): { models: Map<string, string[]>; incomplete: Map<string, string[]> } {
  const models = new Map<string, string[]>();
  const sets = new Map<string, { count: number; parts: Map<number, string> }>();
  for (const f of files) {
    const s = parseSplitName(f);
    if (!s) {
      models.set(f, [f]);
      continue;
    }
    const key = path.join(path.dirname(f), `${s.stem}#${s.count}`);
    let set = sets.get(key);
    if (!set) sets.set(key, (set = { count: s.count, parts: new Map() }));
    set.parts.set(s.index, f);
  }
  const incomplete = new Map<string, string[]>();
  for (const set of sets.values()) {
    const parts = [...set.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, f]) => f);
    const first = set.parts.get(1) ?? parts[0];
    if (set.parts.size === set.count && set.parts.has(1)) models.set(first, parts);
    else incomplete.set(first, parts);
  }
  return { models, incomplete };
}
