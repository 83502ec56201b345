import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Cursor, TextDocumentLines } from '../../src/core/completion/document';
import { mulberry32 } from '../completions/typist';

// The held-out files (test/fixtures/quality/holdout/, never trained on; manifest.json names each
// one's source, path and licence) and the cursor positions the quality measures use. Positions are
// picked by a seeded generator, so every run and every model sees the same ones.

export const HOLDOUT_DIR = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'quality', 'holdout');

export const GROUPS = ['python', 'js-ts', 'c-cpp'] as const;
export type Group = (typeof GROUPS)[number];

export interface HoldoutFile {
  /** Path relative to the holdout folder, e.g. "python/00-dep_util.py". */
  file: string;
  group: Group;
  /** VS Code language id (manifest "lang"). */
  languageId: string;
  /** Where it came from (package) and its licence, from the manifest. */
  source: string;
  licence: string;
  lines: string[];
}

interface ManifestEntry {
  file: string;
  lang: string;
  source: string;
  path: string;
  licence: string;
  sha256: string;
}

const GROUP_OF: Record<string, Group> = {
  python: 'python',
  javascript: 'js-ts',
  typescript: 'js-ts',
  javascriptreact: 'js-ts',
  typescriptreact: 'js-ts',
  c: 'c-cpp',
  cpp: 'c-cpp',
};

/** Every file of the manifest, checked against its sha256 (a changed file would change the figures). */
export function loadHoldout(dir = HOLDOUT_DIR): HoldoutFile[] {
  const manifestPath = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestPath))
    throw new Error(`${manifestPath} is missing: the held-out files come with the trained model (test/fixtures/quality/holdout/).`);
  const entries = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as ManifestEntry[];
  return entries.map((e) => {
    const buf = fs.readFileSync(path.join(dir, e.file));
    const sha = crypto.createHash('sha256').update(buf).digest('hex');
    if (sha !== e.sha256)
      throw new Error(`held-out file ${e.file} does not match its sha256 in manifest.json; restore it (git checkout test/fixtures/quality).`);
    const group = GROUP_OF[e.lang] ?? (GROUPS as readonly string[]).find((g) => e.file.startsWith(`${g}/`));
    if (!group) throw new Error(`held-out file ${e.file} has a language (${e.lang}) outside ${GROUPS.join(', ')}.`);
    return { file: e.file, group: group as Group, languageId: e.lang, source: e.source, licence: e.licence, lines: buf.toString('utf8').split(/\r?\n/) };
  });
}

/** A cursor at the first non-blank character of a line, and the rest of that line to predict. */
export interface Position {
  file: HoldoutFile;
  /** 0-based line. */
  line: number;
  indent: string;
  expected: string;
}

/** Lines worth predicting: at least 6 non-space characters, not the first line of a file. */
function candidates(f: HoldoutFile): number[] {
  const out: number[] = [];
  for (let i = 1; i < f.lines.length; i++) {
    const l = f.lines[i];
    if (l.length <= 400 && l.replace(/\s/g, '').length >= 6) out.push(i);
  }
  return out;
}

function shuffle<T>(a: T[], rnd: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/**
 * `perGroup` positions in each group, in runs of `run` consecutive candidate lines, the runs
 * taken in turn from the group's files (so no long file dominates) at seeded places; sorted by
 * file and line. Consecutive positions share most of their prompt, as they do for one user
 * writing one file, so the server's prompt cache gets its ordinary use and a run costs one full
 * prefill instead of `run`.
 */
export function pickPositions(files: HoldoutFile[], perGroup: number, seed: number, run = 5): Position[] {
  const rnd = mulberry32(seed);
  const out: Position[] = [];
  for (const g of GROUPS) {
    const pools = shuffle(
      files.filter((f) => f.group === g),
      rnd,
    ).map((f) => {
      const c = candidates(f);
      // Run starts at seeded places, every candidate in at most one run.
      const starts = shuffle(
        c.filter((_, i) => i % run === 0).map((_, k) => k * run),
        rnd,
      );
      return { f, c, starts };
    });
    const picked: Position[] = [];
    for (let round = 0; picked.length < perGroup && pools.some((p) => p.starts.length > round); round++) {
      for (const p of pools) {
        const at = p.starts[round];
        if (at === undefined) continue;
        for (const i of p.c.slice(at, at + run)) {
          if (picked.length >= perGroup) break;
          const l = p.f.lines[i];
          const indent = /^[ \t]*/.exec(l)![0];
          picked.push({ file: p.f, line: i, indent, expected: l.slice(indent.length).trimEnd() });
        }
      }
    }
    out.push(...picked);
  }
  return out.sort((a, b) => (a.file.file < b.file.file ? -1 : a.file.file > b.file.file ? 1 : a.line - b.line));
}

export type QualityMode = 'next-line' | 'fim';

/**
 * The document as the user has it at this position. next-line: written top-down, nothing below
 * the cursor line's indentation; fim: the line is being written mid-file, the rest of the file
 * below it.
 */
export function documentAt(p: Position, mode: QualityMode): { doc: TextDocumentLines; cursor: Cursor } {
  const lines = p.file.lines;
  const text = mode === 'next-line' ? [...lines.slice(0, p.line), p.indent] : [...lines.slice(0, p.line), p.indent, ...lines.slice(p.line + 1)];
  // A URI per position and mode: no suggestion remembered at one position may answer another.
  const doc = new TextDocumentLines(text.join('\n'), `file:///holdout/${p.file.file}?${mode}@${p.line}`, p.file.languageId, p.file.file);
  return { doc, cursor: { line: p.line, character: p.indent.length } };
}
