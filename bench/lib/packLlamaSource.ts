import { execFileSync } from 'child_process';
import * as fs from 'fs';
import { ensureLlamaSource, LlamaSource } from '../../src/daemon/installer/llamaSource';

// The pinned llama.cpp source as one tar.xz to carry to a GPU machine (≈ 8 MB): what CMake needs
// to build llama-server, llama-bench and ggml-rpc-server, no more. tools/ui must stay (CMake wants
// it even with the UI off); left out are git, docs, media, tests, benches (with
// -DLLAMA_BUILD_TESTS=OFF nothing asks for them) and models/*.gguf* (the vocab files and their test
// data; a bench that needs a vocab carries it beside the tarball). The one packer of
// bench/cluster-gpu-prepare.ts, bench/vulkan-gpu-prepare.ts (top '.': their GPU scripts extract into
// llama.cpp/), bench/models-gpu-prepare.ts (top 'llama.cpp') and bench/sidecar.ts --pack (top
// 'src-<commit>'); a new GPU bench uses it too rather than its own tar command.

export const LLAMA_SOURCE_EXCLUDES = ['./.git', './docs', './media', './tests', './benches', './models/*.gguf*'];

export interface PackLlamaSourceOptions {
  /**
   * The folder the entries start with, as the GPU-side script extracts it: '.' (entries "./…",
   * the default) or a name ("llama.cpp" gives "llama.cpp/…").
   */
  topDir?: string;
  /** Keep a tarball that is already there (it is written whole or not at all). */
  keep?: boolean;
}

/** Writes `tarball`; returns the source it packed. */
export async function packLlamaSource(tarball: string, opts: PackLlamaSourceOptions = {}): Promise<LlamaSource> {
  const src = await ensureLlamaSource();
  if (opts.keep && fs.existsSync(tarball)) return src;
  const top = opts.topDir ?? '.';
  const tmp = `${tarball}.tmp`;
  execFileSync(
    'tar',
    [
      '-cJf',
      tmp,
      '--anchored',
      ...LLAMA_SOURCE_EXCLUDES.map((e) => `--exclude=${e}`),
      ...(top === '.' ? [] : ['--transform', `s,^\\.,${top},`]),
      '-C',
      src.srcDir,
      '.',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  fs.renameSync(tmp, tarball);
  return src;
}
