// GGUF files already on this machine: folders the user lists (`strata.models.directories`),
// Strata's own download folder, and the caches other tools fill: llama.cpp's `-hf` downloads
// (the Hugging Face hub cache layout in current llama.cpp, ~/.cache/llama.cpp in older ones) and
// LM Studio's models folder, and Ollama's store (GGUF blobs named by digest, found through its
// manifests, which also give the name a user knows: "qwen2.5-coder:7b"). Split models count once. Vision projectors (mmproj) and vocab-only
// files are not models one can chat with and are left out.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { groupSplitFiles } from '../inspect/splitFiles';

export type LocalSource = 'directory' | 'strata' | 'hf-cache' | 'llama.cpp-cache' | 'lm-studio' | 'ollama';

export interface LocalModelFile {
  /** First part. */
  path: string;
  parts: string[];
  sizeBytes: number;
  source: LocalSource;
  /** "org/repo" when the location says it (hub cache, LM Studio publisher/repo folders). */
  repo?: string;
  /** Path inside the repository ("Model-Q4_K_M.gguf" or "Model-Q8_0/Model-Q8_0-00001-of-00002.gguf"). */
  repoFile?: string;
  /** Hub cache blobs are named by their SHA-256: a free, trustworthy hash. */
  sha256?: string;
  /** Parts of a split set where some are missing. */
  incomplete?: boolean;
  /** The name the tool that keeps it uses, when the file name is not one ("qwen2.5-coder:7b" in Ollama). */
  name?: string;
}

export interface ScanRoot {
  dir: string;
  source: LocalSource;
}

/** Where other tools keep models on this platform (only those that exist are scanned). */
export function defaultScanRoots(env: NodeJS.ProcessEnv = process.env, home = os.homedir(), platform = process.platform): ScanRoot[] {
  const roots: ScanRoot[] = [];
  const hub =
    env.HF_HUB_CACHE ||
    env.HUGGINGFACE_HUB_CACHE ||
    (env.HF_HOME ? path.join(env.HF_HOME, 'hub') : '') ||
    (env.XDG_CACHE_HOME ? path.join(env.XDG_CACHE_HOME, 'huggingface', 'hub') : path.join(home, '.cache', 'huggingface', 'hub'));
  roots.push({ dir: hub, source: 'hf-cache' });
  if (env.LLAMA_CACHE) roots.push({ dir: env.LLAMA_CACHE, source: 'llama.cpp-cache' });
  const legacy =
    platform === 'darwin'
      ? path.join(home, 'Library', 'Caches', 'llama.cpp')
      : platform === 'win32'
        ? path.join(env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'), 'llama.cpp')
        : path.join(env.XDG_CACHE_HOME ?? path.join(home, '.cache'), 'llama.cpp');
  roots.push({ dir: legacy, source: 'llama.cpp-cache' });
  roots.push({ dir: path.join(home, '.lmstudio', 'models'), source: 'lm-studio' });
  roots.push({ dir: path.join(home, '.cache', 'lm-studio', 'models'), source: 'lm-studio' });
  roots.push({ dir: env.OLLAMA_MODELS || path.join(home, '.ollama', 'models'), source: 'ollama' });
  // Ollama's Linux service keeps its store under its own user's home.
  if (platform === 'linux' && !env.OLLAMA_MODELS) roots.push({ dir: '/usr/share/ollama/.ollama/models', source: 'ollama' });
  return roots;
}

const SKIP = /mmproj|^ggml-vocab-|\.(part|incomplete|tmp)/i;
const MAX_DEPTH = 6;
const MAX_FILES = 5000;

/** Scans the roots; unreadable or missing folders are skipped silently (they are only guesses). */
export async function scanLocalModels(roots: readonly ScanRoot[]): Promise<LocalModelFile[]> {
  const out: LocalModelFile[] = [];
  const seen = new Set<string>();
  for (const root of roots) {
    if (root.source === 'ollama') {
      for (const m of await scanOllama(root.dir)) {
        if (seen.has(m.path)) continue;
        seen.add(m.path);
        out.push(m);
      }
      continue;
    }
    const files: string[] = [];
    await walk(root.dir, 0, files);
    const { models, incomplete } = groupSplitFiles(files);
    for (const [first, parts] of [...models, ...incomplete]) {
      let real: string;
      try {
        real = fs.realpathSync(first);
      } catch {
        continue;
      }
      // The same blob reached through two snapshots or two roots is one model.
      if (seen.has(real)) continue;
      seen.add(real);
      const sizes = parts.map((p) => safeSize(p));
      out.push({
        path: first,
        parts,
        sizeBytes: sizes.reduce((a, b) => a + b, 0),
        source: root.source,
        ...describeLocation(root, first),
        ...(incomplete.has(first) ? { incomplete: true } : {}),
      });
    }
  }
  return out;
}

async function walk(dir: string, depth: number, acc: string[]): Promise<void> {
  if (depth > MAX_DEPTH || acc.length >= MAX_FILES) return;
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    // Hub blobs are reached through snapshots (symlinks); the blobs folder itself has no names.
    if (e.isDirectory() && e.name !== 'blobs') await walk(full, depth + 1, acc);
    else if ((e.isFile() || e.isSymbolicLink()) && /\.gguf$/i.test(e.name) && !SKIP.test(e.name)) acc.push(full);
  }
}

const OLLAMA_MODEL_LAYER = 'application/vnd.ollama.image.model';

/** Ollama's store: manifests/<registry>/<namespace>/<model>/<tag> name the model blob by digest. */
async function scanOllama(dir: string): Promise<LocalModelFile[]> {
  const manifests: string[] = [];
  const walkManifests = async (d: string, depth: number): Promise<void> => {
    if (depth > 4 || manifests.length >= MAX_FILES) return;
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walkManifests(full, depth + 1);
      else if (e.isFile() && depth === 3) manifests.push(full);
    }
  };
  const root = path.join(dir, 'manifests');
  await walkManifests(root, 0);
  const out: LocalModelFile[] = [];
  for (const m of manifests) {
    let layers: Array<{ mediaType?: unknown; digest?: unknown }>;
    try {
      layers = (JSON.parse(await fs.promises.readFile(m, 'utf8')) as { layers?: typeof layers }).layers ?? [];
    } catch {
      continue;
    }
    const digest = layers.find((l) => l.mediaType === OLLAMA_MODEL_LAYER)?.digest;
    const hex = typeof digest === 'string' ? /^sha256:([0-9a-f]{64})$/.exec(digest)?.[1] : undefined;
    if (!hex) continue;
    const blob = path.join(dir, 'blobs', `sha256-${hex}`);
    if (!(await isGguf(blob))) continue;
    const [registry, namespace, model, tag] = path.relative(root, m).split(path.sep);
    const name = registry === 'registry.ollama.ai' && namespace === 'library' ? `${model}:${tag}` : `${namespace}/${model}:${tag}`;
    out.push({ path: blob, parts: [blob], sizeBytes: safeSize(blob), source: 'ollama', sha256: hex, name });
  }
  return out;
}

async function isGguf(file: string): Promise<boolean> {
  try {
    const fh = await fs.promises.open(file, 'r');
    try {
      const b = Buffer.alloc(4);
      await fh.read(b, 0, 4, 0);
      return b.toString('latin1') === 'GGUF';
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

function safeSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

function describeLocation(root: ScanRoot, file: string): Pick<LocalModelFile, 'repo' | 'repoFile' | 'sha256'> {
  const rel = path.relative(root.dir, file).split(path.sep);
  if (root.source === 'hf-cache') {
    // models--org--name/snapshots/<revision>/<path in repo>
    const m = /^models--(.+?)--(.+)$/.exec(rel[0] ?? '');
    if (m && rel[1] === 'snapshots' && rel.length >= 4) {
      let sha256: string | undefined;
      try {
        const blob = path.basename(fs.realpathSync(file));
        if (/^[0-9a-f]{64}$/.test(blob)) sha256 = blob;
      } catch {
        /* dangling link */
      }
      return { repo: `${m[1]}/${m[2]}`, repoFile: rel.slice(3).join('/'), ...(sha256 ? { sha256 } : {}) };
    }
  }
  if (root.source === 'lm-studio' && rel.length >= 3) {
    return { repo: `${rel[0]}/${rel[1]}`, repoFile: rel.slice(2).join('/') };
  }
  if (root.source === 'strata' && rel.length >= 3) {
    // <downloads>/<org>/<repo>/<file>: Strata's own layout (download/store.ts).
    return { repo: `${rel[0]}/${rel[1]}`, repoFile: rel.slice(2).join('/') };
  }
  if (root.source === 'llama.cpp-cache') {
    // Old llama.cpp: "<org>_<repo>_<file>.gguf" in one folder.
    const m = /^([^_]+)_(.+?)_([^_]+\.gguf)$/.exec(path.basename(file));
    if (m) return { repo: `${m[1]}/${m[2]}`, repoFile: m[3] };
  }
  return {};
}
