// What the "Switch Model" picker and the plan provider share, without `vscode`: the catalog with
// what is on disk, each row planned against this machine (the real header when the file is
// here, the preset's architecture otherwise), and the one-line texts of a row.

import * as fs from 'fs';
import * as path from 'path';
import { buildCatalog, CatalogEntry, CustomModel } from './catalog/catalog';
import { defaultScanRoots, LocalModelFile, scanLocalModels, ScanRoot } from './catalog/localScan';
import { planModelFromArch } from './catalog/presetModel';
import { modelDestination } from './download/modelPath';
import { inspectModel, ModelInfo } from './inspect/modelInfo';
import { PlannerMachine } from './planner/devices';
import { KvCacheType } from './planner/kvCache';
import { PlanModel } from './planner/layout';
import { gib, ModelPlan, planModel, PlanRequest, Role } from './planner/plan';
import { speedLabel } from './planner/speed';

export interface ModelsConfig {
  /** `strata.models.directories`. */
  directories: string[];
  /** `strata.models.downloadDirectory` (resolved). */
  downloadDir: string;
  custom: CustomModel[];
  /** `strata.models.contextSize`: 0 = by role. */
  contextSize: number;
  kvCacheType: KvCacheType | 'auto';
  /** 0 = by role. */
  slots: number;
  hubEndpoint?: string;
  bandwidthGBps?: number;
  /** Also scan llama.cpp's, LM Studio's and the hub's caches (default true). */
  scanCaches?: boolean;
}

export function scanRoots(cfg: ModelsConfig, env: NodeJS.ProcessEnv = process.env): ScanRoot[] {
  return [
    { dir: cfg.downloadDir, source: 'strata' },
    ...cfg.directories.map((dir) => ({ dir, source: 'directory' as const })),
    ...(cfg.scanCaches === false ? [] : defaultScanRoots(env)),
  ];
}

export async function loadCatalog(cfg: ModelsConfig, local?: LocalModelFile[]): Promise<CatalogEntry[]> {
  return buildCatalog({ local: local ?? (await scanLocalModels(scanRoots(cfg))), custom: cfg.custom });
}

const infoCache = new Map<string, { key: string; info: ModelInfo }>();

/** inspectModel, cached by path, size and mtime (a 70B header takes ~100 ms to read). */
export async function inspectCached(file: string): Promise<ModelInfo> {
  const st = fs.statSync(file);
  const key = `${st.size}:${st.mtimeMs}`;
  const hit = infoCache.get(file);
  if (hit?.key === key) return hit.info;
  const info = await inspectModel(file);
  infoCache.set(file, { key, info });
  return info;
}

export interface PlannedRow {
  entry: CatalogEntry;
  role: Role;
  plan?: ModelPlan;
  info?: ModelInfo;
  /** Why it could not be planned (corrupt file, unknown size). */
  error?: string;
  /** Bytes of an unfinished download waiting to be resumed. */
  partialBytes?: number;
}

/** Bytes already downloaded of an entry that is not finished (its `.part` files and finished parts). */
export function partialBytes(entry: CatalogEntry, downloadDir: string): number {
  if (entry.downloaded || !entry.repo || !entry.files?.length) return 0;
  let n = 0;
  for (const f of entry.files) {
    try {
      const dest = modelDestination(downloadDir, entry.repo, f);
      for (const p of [dest, `${dest}.part`]) {
        try {
          n += fs.statSync(p).size;
        } catch {
          /* not there */
        }
      }
    } catch {
      /* an unsafe name is refused when downloading */
    }
  }
  return n;
}

/**
 * The picker's order: what fits first, and among those what is on disk first (no download, no
 * wait), then the better verdict, then the smaller file; what does not fit last.
 */
export function sortRows(rows: readonly PlannedRow[]): PlannedRow[] {
  const fit = (r: PlannedRow) => (r.plan?.verdict === 'does-not-fit' ? 2 : r.plan ? 0 : 1);
  const verdict = (r: PlannedRow) => (r.plan?.verdict === 'fits' ? 0 : 1);
  return [...rows].sort(
    (a, b) => fit(a) - fit(b) || Number(b.entry.downloaded) - Number(a.entry.downloaded) || verdict(a) - verdict(b) || a.entry.sizeBytes - b.entry.sizeBytes,
  );
}

function requestFor(model: PlanModel, machine: PlannerMachine, cfg: ModelsConfig, role: Role, label: string): PlanRequest {
  return {
    model,
    machine,
    role,
    label,
    ...(cfg.contextSize > 0 ? { ctx: cfg.contextSize } : {}),
    ...(cfg.slots > 0 ? { slots: cfg.slots } : {}),
    kvType: cfg.kvCacheType,
  };
}

/** The model a row stands for: its header when on disk, else the preset's architecture and size. */
export async function planModelOf(entry: CatalogEntry): Promise<{ model?: PlanModel; info?: ModelInfo; error?: string }> {
  if (entry.downloaded && entry.path) {
    try {
      const info = await inspectCached(entry.path);
      return { model: info, info };
    } catch (e) {
      return { error: (e as Error).message };
    }
  }
  if (entry.preset && entry.presetFile) {
    return { model: planModelFromArch(entry.preset.arch, entry.quant, entry.sizeBytes) };
  }
  return { error: 'not downloaded yet; its size and shape are known once it is' };
}

export async function planRows(entries: readonly CatalogEntry[], machine: PlannerMachine, cfg: ModelsConfig, role: Role): Promise<PlannedRow[]> {
  const rows: PlannedRow[] = [];
  // Other quants of the same preset are the "smaller quant" candidates.
  const byPreset = new Map<string, Array<{ label: string; model: PlanModel }>>();
  for (const e of entries) {
    if (!e.preset) continue;
    const list = byPreset.get(e.preset.id) ?? [];
    list.push({ label: `${e.label} ${e.quant}`, model: planModelFromArch(e.preset.arch, e.quant, e.sizeBytes) });
    byPreset.set(e.preset.id, list);
  }
  for (const found of entries) {
    const { model, info, error } = await planModelOf(found);
    // A file whose name does not say its quantization: the header does.
    const entry = info && found.quant === '?' ? { ...found, quant: info.quantLabel } : found;
    const partial = partialBytes(entry, cfg.downloadDir);
    const extra = partial > 0 ? { partialBytes: partial } : {};
    if (!model) {
      rows.push({ entry, role, error, ...extra });
      continue;
    }
    const req = requestFor(model, machine, cfg, role, `${entry.label} ${entry.quant}`);
    req.alternatives = entry.preset ? byPreset.get(entry.preset.id) : undefined;
    rows.push({ entry, role, plan: planModel(req), info, ...extra });
  }
  return rows;
}

/** Plan for a file the settings name (the plan provider's path): its header, this machine. */
export async function planForFile(file: string, machine: PlannerMachine, cfg: ModelsConfig, role: Role): Promise<{ plan: ModelPlan; info: ModelInfo }> {
  const info = await inspectCached(file);
  const plan = planModel(requestFor(info, machine, cfg, role, `${info.name ?? path.basename(file)} ${info.quantLabel}`));
  return { plan, info };
}

export interface RowText {
  label: string;
  description: string;
  detail: string;
}

/** "$(pass) fits · 32k ctx · 7–11 tok/s (estimate)", size, quant, downloaded or not. */
export function rowText(r: PlannedRow): RowText {
  const e = r.entry;
  const size = e.sizeBytes ? `${gbText(e.sizeBytes)}${e.sizeSource === 'estimated' ? ' (est.)' : ''}` : 'size unknown';
  const where = e.downloaded
    ? '$(check) on disk'
    : r.partialBytes
      ? `$(debug-pause) download paused at ${gbText(r.partialBytes)} of ${size}: pick it to resume`
      : e.incomplete
        ? '$(warning) incomplete download'
        : `$(cloud-download) download ${size}`;
  let badge: string;
  if (!r.plan) badge = `$(question) ${r.error ?? 'cannot plan'}`;
  else if (r.plan.verdict === 'fits') badge = `$(pass) fits · ${ctxLabel(r.plan.ctx)} ctx`;
  else if (r.plan.verdict === 'fits-smaller-context') badge = `$(warning) fits with ${ctxLabel(r.plan.ctx)} ctx`;
  else
    badge = `$(error) does not fit${r.plan.fixes[0] ? `: ${r.plan.fixes[0].kind === 'kernel-gtt' ? 'raise GTT' : r.plan.fixes[0].kind === 'smaller-quant' ? `try ${r.plan.fixes[0].value}` : r.plan.fixes[0].kind === 'add-peer' ? 'add a peer' : 'see details'}` : ''}`;
  const speed = r.plan && r.plan.verdict !== 'does-not-fit' ? speedLabel(r.plan.speed) : '';
  return {
    label: e.label,
    description: [e.quant, size, speed].filter(Boolean).join(' · '),
    detail: [badge, r.plan ? `${gib(r.plan.totalBytes)} planned` : '', where, e.licence ?? (e.source ? `from ${SOURCE_WORDS[e.source] ?? e.source}` : '')]
      .filter(Boolean)
      .join(' · '),
  };
}

function gbText(n: number): string {
  return n < 1e9 ? `${Math.max(1, Math.round(n / 1e6))} MB` : `${(n / 1e9).toFixed(n >= 10e9 ? 0 : 1)} GB`;
}

const SOURCE_WORDS: Record<string, string> = {
  'hf-cache': 'the Hugging Face cache',
  'llama.cpp-cache': "llama.cpp's cache",
  'lm-studio': 'LM Studio',
  ollama: 'Ollama',
  directory: 'your models folder',
  strata: "Strata's downloads",
};

function ctxLabel(n: number): string {
  return n >= 1024 ? `${Math.round(n / 1024)}k` : String(n);
}
