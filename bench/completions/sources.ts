import * as fs from 'fs';
import * as path from 'path';
import { ensureLlamaSource } from '../../src/daemon/installer/llamaSource';
import { GROUPS, loadHoldout } from '../quality/holdout';
import { mulberry32 } from './typist';

// Real source files the project did not write, in several languages: from the llama.cpp tree
// (the pinned source the installer keeps in the cache) and from installed npm packages. Shared
// by the completion benchmark and the completion integration tests.

export interface SourceFile {
  /** Short label for tables, e.g. "C++ server-common.cpp". */
  label: string;
  languageId: string;
  /** Path relative to its tree, sent as the file name. */
  name: string;
  text: string;
}

const REPO = path.resolve(__dirname, '..', '..');

interface Candidate {
  label: string;
  languageId: string;
  tree: 'llama' | 'npm';
  rel: string;
}

// Each language lists fallbacks, in case a package version moves a file.
const CANDIDATES: Candidate[][] = [
  [{ label: 'C++', languageId: 'cpp', tree: 'llama', rel: 'tools/server/server-common.cpp' }],
  [
    { label: 'Python', languageId: 'python', tree: 'llama', rel: 'gguf-py/gguf/gguf_writer.py' },
    { label: 'Python', languageId: 'python', tree: 'llama', rel: 'convert_hf_to_gguf.py' },
  ],
  [
    { label: 'TypeScript', languageId: 'typescript', tree: 'npm', rel: '@huggingface/gguf/src/gguf.ts' },
    { label: 'TypeScript', languageId: 'typescript', tree: 'npm', rel: '@azure/msal-common/src/cache/CacheManager.ts' },
  ],
  [
    { label: 'JavaScript', languageId: 'javascript', tree: 'npm', rel: 'ws/lib/websocket.js' },
    { label: 'JavaScript', languageId: 'javascript', tree: 'npm', rel: 'mocha/lib/runner.js' },
  ],
  [{ label: 'Kotlin', languageId: 'kotlin', tree: 'llama', rel: 'examples/llama.android/lib/src/main/java/com/arm/aichat/internal/InferenceEngineImpl.kt' }],
  [{ label: 'C', languageId: 'c', tree: 'llama', rel: 'ggml/src/ggml.c' }],
];

async function llamaDir(): Promise<string> {
  return process.env.STRATA_LLAMA_SRC || (await ensureLlamaSource()).srcDir;
}

/** One real file per language (those found). */
export async function benchmarkSources(): Promise<SourceFile[]> {
  const llama = await llamaDir();
  const npm = path.join(REPO, 'node_modules');
  const out: SourceFile[] = [];
  for (const options of CANDIDATES) {
    for (const c of options) {
      const file = path.join(c.tree === 'llama' ? llama : npm, c.rel);
      if (!fs.existsSync(file)) continue;
      out.push({ label: `${c.label} ${path.basename(c.rel)}`, languageId: c.languageId, name: c.rel, text: fs.readFileSync(file, 'utf8') });
      break;
    }
  }
  if (out.length < 3) throw new Error(`only ${out.length} benchmark source files found (llama.cpp tree at ${llama}, node_modules at ${npm}); run npm install.`);
  return out;
}

/**
 * `count` of the held-out files (test/fixtures/quality/holdout/, never trained on), the language
 * groups in turn, each at least 120 lines long, in a seeded order. What a typing trace that
 * accepts suggestions must replay: on files the model saw, it would measure its memory.
 */
export function holdoutSources(count: number, seed: number): SourceFile[] {
  const rnd = mulberry32(seed);
  const files = loadHoldout()
    .filter((f) => f.lines.length >= 120)
    .map((f) => ({ f, r: rnd() }))
    .sort((a, b) => a.r - b.r)
    .map((x) => x.f);
  const out: SourceFile[] = [];
  for (let i = 0; out.length < count && i < files.length * GROUPS.length; i++) {
    const f = files.find((x) => x.group === GROUPS[i % GROUPS.length] && !out.some((o) => o.name === x.file));
    if (f) out.push({ label: `${f.group} ${path.basename(f.file)}`, languageId: f.languageId, name: f.file, text: f.lines.join('\n') });
  }
  return out;
}

/** A real 10,000-line C++ file (the first 10,000 lines of ggml-cpu/ops.cpp, 12,206 lines). */
export async function tenThousandLineFile(): Promise<SourceFile> {
  const llama = await llamaDir();
  for (const rel of ['ggml/src/ggml-cpu/ops.cpp', 'tests/test-backend-ops.cpp', 'ggml/src/ggml-vulkan/ggml-vulkan.cpp']) {
    const file = path.join(llama, rel);
    if (!fs.existsSync(file)) continue;
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    if (lines.length < 10_000) continue;
    return { label: `C++ ${path.basename(rel)} (10,000 lines)`, languageId: 'cpp', name: rel, text: lines.slice(0, 10_000).join('\n') };
  }
  throw new Error(`no source file of 10,000 lines in ${llama}`);
}
