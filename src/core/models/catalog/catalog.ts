// One list of everything the user can switch to: the presets (each quantization a row), the
// GGUFs already on disk (matched to a preset when they are one, listed on their own otherwise)
// and the custom repo/file entries from settings. The UI groups it by role and decorates each
// row with the planner's verdict.

import * as path from 'path';
import type { Role } from '../planner/plan';
import { parseSplitName } from '../inspect/splitFiles';
import type { LocalModelFile, LocalSource } from './localScan';
import { PRESETS, PresetFile, PresetModel } from './presets';

export interface CustomModel {
  /** "org/name" on the hub (or the mirror set as the endpoint). */
  repo: string;
  /** Path in the repository; for a split model, its first part (the others are derived). */
  file: string;
  label?: string;
  roles?: Role[];
  /** Pin the expected SHA-256 (lower-case hex) of a single file. */
  sha256?: string;
}

export interface CatalogEntry {
  key: string;
  kind: 'preset' | 'local' | 'custom';
  label: string;
  quant: string;
  roles: Role[];
  sizeBytes: number;
  sizeSource: 'published' | 'estimated' | 'disk' | 'unknown';
  repo?: string;
  /** Repository paths of every part, in order. */
  files?: string[];
  sha256?: PresetFile['sha256'];
  /** First part on disk, when downloaded. */
  path?: string;
  parts?: string[];
  downloaded: boolean;
  /** Downloaded but a part is missing. */
  incomplete?: boolean;
  preset?: PresetModel;
  presetFile?: PresetFile;
  licence?: string;
  source?: LocalSource;
}

export interface CatalogInput {
  presets?: readonly PresetModel[];
  local: readonly LocalModelFile[];
  custom?: readonly CustomModel[];
}

const QUANT_RE = /(?:^|[-_.])(IQ\d_(?:XXS|XS|NL|S|M)|Q\d_K_[SML]|Q\d_K|Q\d_\d|TQ\d_\d|MXFP4(?:_MOE)?|BF16|F16|F32)(?=[-_.]|$)/i;

/** "Q4_K_M" from "Qwen2.5-Coder-32B-Instruct-Q4_K_M.gguf". */
export function quantFromName(file: string): string | undefined {
  const base = path
    .basename(file)
    .replace(/-\d{5}-of-\d{5}\.gguf$/i, '')
    .replace(/\.gguf$/i, '');
  return QUANT_RE.exec(base)?.[1]?.toUpperCase();
}

export function buildCatalog(input: CatalogInput): CatalogEntry[] {
  const presets = input.presets ?? PRESETS;
  const local = [...input.local];
  const used = new Set<LocalModelFile>();
  const entries: CatalogEntry[] = [];

  const findLocal = (repo: string, files: readonly string[]): LocalModelFile | undefined => {
    const first = files[0];
    const byRepo = local.find((l) => l.repo?.toLowerCase() === repo.toLowerCase() && l.repoFile === first);
    if (byRepo) return byRepo;
    // Downloaded by hand into a listed folder: the file name is the evidence. A file that says
    // it came from another repository (LM Studio, hub cache) is another conversion: its own row.
    const base = path.basename(first);
    return local.find((l) => !l.repo && path.basename(l.path) === base);
  };

  for (const p of presets) {
    for (const f of p.files) {
      const l = findLocal(f.repo, f.files);
      if (l) used.add(l);
      entries.push({
        key: `preset:${p.id}:${f.quant}`,
        kind: 'preset',
        label: p.displayName,
        quant: f.quant,
        roles: p.roles,
        sizeBytes: l && !l.incomplete ? l.sizeBytes : f.sizeBytes,
        sizeSource: l && !l.incomplete ? 'disk' : f.sizeSource,
        repo: f.repo,
        files: f.files,
        sha256: f.sha256,
        ...(l ? { path: l.path, parts: l.parts, source: l.source } : {}),
        downloaded: !!l && !l.incomplete,
        ...(l?.incomplete ? { incomplete: true } : {}),
        preset: p,
        presetFile: f,
        licence: p.licence,
      });
    }
  }

  for (const c of input.custom ?? []) {
    const files = customFiles(c.file);
    const l = findLocal(c.repo, files);
    if (l) used.add(l);
    entries.push({
      key: `custom:${c.repo}/${c.file}`,
      kind: 'custom',
      label: c.label ?? `${c.repo.split('/').pop()}`,
      quant: quantFromName(c.file) ?? '?',
      roles: c.roles ?? ['chat', 'fim', 'both'],
      sizeBytes: l?.sizeBytes ?? 0,
      sizeSource: l ? 'disk' : 'unknown',
      repo: c.repo,
      files,
      sha256: c.sha256 ? [c.sha256] : 'verify-on-first-download',
      ...(l ? { path: l.path, parts: l.parts, source: l.source } : {}),
      downloaded: !!l && !l.incomplete,
    });
  }

  for (const l of local) {
    if (used.has(l)) continue;
    entries.push({
      key: `local:${l.path}`,
      kind: 'local',
      label: localLabel(l),
      quant: quantFromName(l.path) ?? '?',
      // Refined from the header (FIM tokens, chat template) when the picker inspects it.
      roles: ['chat', 'fim', 'both'],
      sizeBytes: l.sizeBytes,
      sizeSource: 'disk',
      ...(l.repo
        ? { repo: l.repo, files: l.parts.map((p) => (l.repoFile ? path.posix.join(path.posix.dirname(l.repoFile), path.basename(p)) : path.basename(p))) }
        : {}),
      ...(l.sha256 ? { sha256: [l.sha256] } : {}),
      path: l.path,
      parts: l.parts,
      downloaded: !l.incomplete,
      ...(l.incomplete ? { incomplete: true } : {}),
      source: l.source,
    });
  }
  return entries;
}

/** Every part of a split file named by its first part; the file itself otherwise. */
export function customFiles(file: string): string[] {
  const s = parseSplitName(file);
  if (!s) return [file];
  const dir = path.posix.dirname(file);
  const pad = (n: number) => String(n).padStart(5, '0');
  return Array.from({ length: s.count }, (_, i) => path.posix.join(dir === '.' ? '' : dir, `${s.stem}-${pad(i + 1)}-of-${pad(s.count)}.gguf`));
}

function localLabel(l: LocalModelFile): string {
  if (l.name) return l.name;
  const base = path
    .basename(l.path)
    .replace(/-\d{5}-of-\d{5}\.gguf$/i, '')
    .replace(/\.gguf$/i, '');
  const q = quantFromName(l.path);
  return q ? base.slice(0, base.toUpperCase().lastIndexOf(q)).replace(/[-_.]+$/, '') || base : base;
}

/** Entries that can take a role ("both" counts for fim and chat). */
export function entriesFor(entries: readonly CatalogEntry[], role: Role): CatalogEntry[] {
  return entries.filter((e) => e.roles.includes(role) || (role !== 'draft' && e.roles.includes('both')));
}
