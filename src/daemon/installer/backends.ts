import * as crypto from 'crypto';
import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import { strataCacheDir, strataStateDir } from '../../core/paths';
import { downloadsRoot, readInstallManifest } from './downloadLlamaServer';
import { exeName } from './findLlamaServer';
import { withLock, writeFileAtomic } from './cacheLock';
import { llamaCacheRoot } from './llamaSource';
import { findOnPath, runProcess } from './runProcess';

// Several llama.cpp builds side by side (cpu, vulkan, hip, cuda; built here or downloaded), and
// "Benchmark Backends": llama-bench on each for one model, results kept in the state dir, the
// fastest made that model's default. Neither backend always wins on Strix Halo (Vulkan generates
// faster on some models, HIP prefills faster on others), so the answer is measured per model.

export interface InstalledBuild {
  /** Directory name: build-<commit12>-<backend>[-targets] or <tag>-<os>-<variant>-<arch>. */
  id: string;
  source: 'build' | 'download';
  backend: string;
  dir: string;
  serverPath: string;
  /** llama-bench next to it, when present. */
  benchPath?: string;
  /** `--version` recorded at install time. */
  version?: string;
  /** For source 'build': the cmake build dir where llama-bench can still be built. */
  cmakeDir?: string;
  /** For sorting: newest first among equals. */
  installedAt?: string;
}

interface BuildStampLike {
  schema?: number;
  commit?: string;
  backend?: string;
  gpuTargets?: string[];
  server?: { rel?: string };
  version?: string;
  builtAt?: string;
}

/** Every complete managed install in the cache (stamped builds, manifest-carrying downloads). */
export function listInstalledBuilds(cacheDir = strataCacheDir(), platform: NodeJS.Platform = process.platform): InstalledBuild[] {
  const out: InstalledBuild[] = [];
  const root = llamaCacheRoot(cacheDir);
  let names: string[] = [];
  try {
    names = fs.readdirSync(root);
  } catch {
    /* nothing built */
  }
  for (const name of names) {
    if (!name.startsWith('build-') || name.endsWith('.lock')) continue;
    const dir = path.join(root, name);
    try {
      const stamp = JSON.parse(fs.readFileSync(path.join(dir, 'strata-build.json'), 'utf8')) as BuildStampLike;
      if (stamp.schema !== 1 || !stamp.server?.rel || !stamp.backend) continue;
      const serverPath = path.join(dir, stamp.server.rel);
      if (!fs.existsSync(serverPath)) continue;
      const bench = path.join(path.dirname(serverPath), exeName('llama-bench', platform));
      out.push({
        id: name,
        source: 'build',
        backend: stamp.backend,
        dir,
        serverPath,
        ...(fs.existsSync(bench) ? { benchPath: bench } : {}),
        ...(stamp.version ? { version: stamp.version } : {}),
        cmakeDir: dir,
        ...(stamp.builtAt ? { installedAt: stamp.builtAt } : {}),
      });
    } catch {
      /* not a finished build */
    }
  }
  const dl = downloadsRoot(cacheDir);
  let dlNames: string[] = [];
  try {
    dlNames = fs.readdirSync(dl);
  } catch {
    /* none downloaded */
  }
  for (const name of dlNames) {
    if (name.startsWith('.') || name.endsWith('.lock') || name.includes('.old-')) continue;
    const dir = path.join(dl, name);
    const m = readInstallManifest(dir);
    if (!m) continue;
    out.push({
      id: name,
      source: 'download',
      backend: m.backend,
      dir,
      serverPath: path.join(dir, m.serverRel),
      ...(m.benchRel && fs.existsSync(path.join(dir, m.benchRel)) ? { benchPath: path.join(dir, m.benchRel) } : {}),
      ...(m.version ? { version: m.version } : {}),
      installedAt: m.installedAt,
    });
  }
  return out;
}

/** GPU backends before CPU; among the GPU ones, the order a probe suggests; newest first among equals. */
export function preferredBuildOrder(builds: InstalledBuild[], opts: { defaultId?: string; probeBackends?: string[] } = {}): InstalledBuild[] {
  const probe = opts.probeBackends ?? [];
  const rank = (b: InstalledBuild): number => {
    if (b.id === opts.defaultId) return -1;
    const i = probe.indexOf(b.backend);
    if (i >= 0) return i;
    return b.backend === 'cpu' ? 1000 : 500;
  };
  return [...builds].sort((a, b) => rank(a) - rank(b) || (b.installedAt ?? '').localeCompare(a.installedAt ?? '') || a.id.localeCompare(b.id));
}

/**
 * The llama.cpp backend to build or download for this machine, from the accelerator probe's
 * backends that answered 'ok' (see src/core/native). HIP before Vulkan on AMD (the toolchain is
 * needed anyway to use it), CUDA on NVIDIA, Metal on Apple, else CPU.
 */
export function recommendedBackends(okBackends: string[], platform: NodeJS.Platform = process.platform): string[] {
  const has = (b: string) => okBackends.includes(b);
  const out: string[] = [];
  if (has('cuda')) out.push('cuda');
  if (has('hip')) out.push('hip');
  if (has('metal') || (platform === 'darwin' && process.arch === 'arm64')) out.push('metal');
  if (has('vulkan') || has('amdgpu')) out.push('vulkan');
  out.push('cpu');
  return [...new Set(out)];
}

// ---------------------------------------------------------------------------------------------
// llama-bench

export interface BenchFigures {
  /** Prompt processing, tokens/s. */
  pp: number;
  /** Generation, tokens/s. */
  tg: number;
  nPrompt: number;
  nGen: number;
  /** What llama-bench says it ran on, e.g. "CUDA", "Vulkan", "CPU". */
  backends?: string;
  gpuInfo?: string;
}

/** llama-bench -o json: one record per test (pp: n_prompt > 0, n_gen = 0; tg: the reverse). */
export function parseLlamaBenchJson(text: string): BenchFigures {
  const start = text.indexOf('[');
  const end = text.lastIndexOf(']');
  if (start < 0 || end < start) throw new Error('llama-bench printed no JSON results');
  const rows = JSON.parse(text.slice(start, end + 1)) as { n_prompt?: number; n_gen?: number; avg_ts?: number; backends?: string; gpu_info?: string }[];
  const pp = rows.find((r) => (r.n_prompt ?? 0) > 0 && (r.n_gen ?? 0) === 0);
  const tg = rows.find((r) => (r.n_gen ?? 0) > 0 && (r.n_prompt ?? 0) === 0);
  if (!pp || !tg || typeof pp.avg_ts !== 'number' || typeof tg.avg_ts !== 'number') throw new Error('llama-bench results lack the pp or tg test');
  return {
    pp: pp.avg_ts,
    tg: tg.avg_ts,
    nPrompt: pp.n_prompt ?? 0,
    nGen: tg.n_gen ?? 0,
    ...(pp.backends ? { backends: pp.backends } : {}),
    ...(pp.gpu_info ? { gpuInfo: pp.gpu_info } : {}),
  };
}

export interface BenchRunOptions {
  nPrompt?: number;
  nGen?: number;
  repetitions?: number;
  /** Extra llama-bench flags (e.g. -t 2, -fa 1). -ngl 99 is added unless given. */
  args?: string[];
  env?: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
  onLine?: (line: string) => void;
}

export async function runLlamaBench(benchPath: string, modelPath: string, opts: BenchRunOptions = {}): Promise<BenchFigures> {
  const args = [
    '-m',
    modelPath,
    '-p',
    String(opts.nPrompt ?? 512),
    '-n',
    String(opts.nGen ?? 128),
    '-r',
    String(opts.repetitions ?? 3),
    '-o',
    'json',
    ...(opts.args ?? []),
  ];
  if (!args.includes('-ngl') && !args.includes('--n-gpu-layers')) args.push('-ngl', '99');
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.env ?? {}) };
  delete env.ELECTRON_RUN_AS_NODE;
  const r = await runProcess(benchPath, args, { env, signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30 * 60_000, onLine: opts.onLine });
  if (r.aborted) throw new Error('The benchmark was cancelled.');
  if (r.code !== 0) {
    const last = r.tail.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`llama-bench ${r.timedOut ? 'timed out' : r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`}: ${last || '(no output)'}`);
  }
  return parseLlamaBenchJson(r.stdout);
}

/**
 * llama-bench for a Strata build made before llama-bench was one of its targets: build that
 * one target in the existing cmake dir (incremental: the libraries are there already).
 */
export async function ensureBenchBinary(
  build: InstalledBuild,
  opts: { signal?: AbortSignal; onLine?: (l: string) => void; jobs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<string | undefined> {
  if (build.benchPath && fs.existsSync(build.benchPath)) return build.benchPath;
  if (build.source !== 'build' || !build.cmakeDir || !fs.existsSync(path.join(build.cmakeDir, 'CMakeCache.txt'))) return undefined;
  const env = opts.env ?? process.env;
  const cmake = findOnPath('cmake', env);
  if (!cmake) return undefined;
  const jobs = opts.jobs ?? Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  const dir = build.cmakeDir;
  // The same lock as ensureLlamaBuild: never two cmake runs in one build dir.
  const r = await withLock(dir, { what: 'The llama-bench build', signal: opts.signal }, (signal) =>
    runProcess(cmake, ['--build', dir, '--config', 'Release', '-j', String(jobs), '--target', 'llama-bench'], { env, signal, cwd: dir, onLine: opts.onLine }),
  );
  if (r.code !== 0) return undefined;
  for (const rel of [path.join('bin', exeName('llama-bench')), path.join('bin', 'Release', exeName('llama-bench'))]) {
    const p = path.join(build.cmakeDir, rel);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Results, kept in <state>/backend-benchmarks.json

export interface BenchResult {
  buildId: string;
  backend: string;
  serverPath: string;
  version?: string;
  at: string;
  figures?: BenchFigures;
  error?: string;
}

export interface ModelBenchRecord {
  modelPath: string;
  modelSize: number;
  results: BenchResult[];
  /** The build chosen as this model's default. */
  defaultBuildId?: string;
  at: string;
}

export interface BenchStore {
  schema: 1;
  models: Record<string, ModelBenchRecord>;
}

export const BENCH_FILE = 'backend-benchmarks.json';

export function benchFile(stateDir = strataStateDir()): string {
  return path.join(stateDir, BENCH_FILE);
}

/** A model is the same model while its path and size are. */
export function modelKey(modelPath: string): string {
  let size = 0;
  try {
    size = fs.statSync(modelPath).size;
  } catch {
    /* gone: key on the path alone */
  }
  return crypto
    .createHash('sha256')
    .update(`${path.resolve(modelPath)}\0${size}`)
    .digest('hex')
    .slice(0, 24);
}

export function readBenchStore(stateDir = strataStateDir()): BenchStore {
  try {
    const s = JSON.parse(fs.readFileSync(benchFile(stateDir), 'utf8')) as BenchStore;
    if (s.schema === 1 && s.models && typeof s.models === 'object') return s;
  } catch {
    /* none yet, or unreadable: start over */
  }
  return { schema: 1, models: {} };
}

export async function writeBenchStore(store: BenchStore, stateDir = strataStateDir()): Promise<void> {
  await fsp.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(benchFile(stateDir), JSON.stringify(store, null, 2) + '\n');
}

/**
 * The winner: the highest generation speed (what a user waits for while code streams in);
 * within 3% of each other, the faster prefill (long FIM contexts) decides.
 */
export function pickFastest(results: BenchResult[]): BenchResult | undefined {
  const ok = results.filter((r) => r.figures);
  if (!ok.length) return undefined;
  return ok.reduce((best, r) => {
    const a = best.figures!;
    const b = r.figures!;
    if (b.tg > a.tg * 1.03) return r;
    if (a.tg > b.tg * 1.03) return best;
    return b.pp > a.pp ? r : best;
  });
}

export function defaultBuildForModel(modelPath: string, stateDir = strataStateDir()): string | undefined {
  return readBenchStore(stateDir).models[modelKey(modelPath)]?.defaultBuildId;
}

export interface BenchmarkBackendsOptions {
  modelPath: string;
  builds: InstalledBuild[];
  stateDir?: string;
  bench?: Omit<BenchRunOptions, 'signal' | 'onLine'>;
  signal?: AbortSignal;
  /** Build llama-bench where a Strata build lacks it (default true). */
  buildMissingBench?: boolean;
  onProgress?: (msg: string, index: number, total: number) => void;
  onLine?: (line: string) => void;
}

/** Benchmarks each build, stores the results and the winner; returns the record. */
export async function benchmarkBackends(opts: BenchmarkBackendsOptions): Promise<ModelBenchRecord> {
  const results: BenchResult[] = [];
  const total = opts.builds.length;
  for (const [i, b] of opts.builds.entries()) {
    if (opts.signal?.aborted) throw new Error('The benchmark was cancelled.');
    const base = { buildId: b.id, backend: b.backend, serverPath: b.serverPath, ...(b.version ? { version: b.version } : {}) };
    let bench = b.benchPath;
    if (!bench && opts.buildMissingBench !== false) {
      opts.onProgress?.(`Building llama-bench for ${b.id}`, i, total);
      bench = await ensureBenchBinary(b, { signal: opts.signal, onLine: opts.onLine });
    }
    if (!bench) {
      results.push({ ...base, at: new Date().toISOString(), error: `${b.id} has no llama-bench (a release without it, or a build that cannot build it).` });
      continue;
    }
    opts.onProgress?.(`Running llama-bench on ${b.id} (${b.backend})`, i, total);
    try {
      const figures = await runLlamaBench(bench, opts.modelPath, { ...opts.bench, signal: opts.signal, onLine: opts.onLine });
      results.push({ ...base, at: new Date().toISOString(), figures });
    } catch (e) {
      if (opts.signal?.aborted) throw new Error('The benchmark was cancelled.');
      results.push({ ...base, at: new Date().toISOString(), error: (e as Error).message });
    }
  }
  let size = 0;
  try {
    size = fs.statSync(opts.modelPath).size;
  } catch {
    /* reported by llama-bench already */
  }
  const winner = pickFastest(results);
  const record: ModelBenchRecord = {
    modelPath: path.resolve(opts.modelPath),
    modelSize: size,
    results,
    ...(winner ? { defaultBuildId: winner.buildId } : {}),
    at: new Date().toISOString(),
  };
  const store = readBenchStore(opts.stateDir);
  store.models[modelKey(opts.modelPath)] = record;
  await writeBenchStore(store, opts.stateDir);
  return record;
}

export function formatBenchTable(record: ModelBenchRecord): string {
  const lines = [`Backends for ${path.basename(record.modelPath)} (llama-bench, tokens/s):`];
  for (const r of record.results) {
    const star = r.buildId === record.defaultBuildId ? ' <- default' : '';
    lines.push(
      r.figures
        ? `  ${r.buildId} [${r.backend}]  prefill ${r.figures.pp.toFixed(1)}  generation ${r.figures.tg.toFixed(1)}${star}`
        : `  ${r.buildId} [${r.backend}]  failed: ${r.error}`,
    );
  }
  return lines.join('\n');
}
