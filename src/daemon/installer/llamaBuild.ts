import * as path from 'path';
import { strataCacheDir } from '../../core/paths';
import { LLAMA_BACKENDS, LlamaBackend, LlamaBuild, llamaBuildDirName, normalizeGpuTargets } from './buildSpec';
import { readCompletedBuild } from './buildStamp';
import { requireBuildTools } from './buildToolchain';
import { withLock } from './cacheLock';
import { compileLlama } from './compileLlama';
import { LlamaInstallError } from './installError';
import { killLeftoverBuild } from './leftoverBuild';
import { InstallProgress, LlamaSource, LlamaSourceOptions, ensureLlamaSource, llamaCacheRoot, readCachedLlamaSource } from './llamaSource';

// Builds llama-server and ggml-rpc-server from the cached llama.cpp source for one backend.
//
//   <cache>/llama.cpp/build-<commit12>-<backend>[-<targets>]/
//     bin/llama-server, bin/ggml-rpc-server   (bin/Release/... with multi-config generators)
//     strata-build.log        full output of the last attempt
//     strata-configure.json   configure args that produced CMakeCache.txt
//     strata-build.json       stamp, written last: cmake defines, binary sizes/mtimes, --version
//
// A build dir with a valid stamp is complete; anything else is resumed (cmake is incremental).

export interface LlamaBuildOptions {
  backend: LlamaBackend;
  /** hip: AMDGPU_TARGETS (gfx1151); cuda: CMAKE_CUDA_ARCHITECTURES (90). Default: this machine's GPUs. */
  gpuTargets?: string[];
  /** Parallel compile jobs; default: available CPUs. */
  jobs?: number;
  onProgress?: (p: InstallProgress) => void;
  /** Every output line of cmake and the compilers (also in the log file). */
  onLog?: (line: string) => void;
  signal?: AbortSignal;
  /** Defaults to strataCacheDir(env). */
  cacheDir?: string;
  /** Build this tree instead of the pinned node-llama-cpp one (a user's checkout, tests). */
  source?: LlamaSource;
  /** Passed to ensureLlamaSource when the source is not cached yet. */
  sourceOptions?: Pick<LlamaSourceOptions, 'tarballPath' | 'nodeLlamaCppVersion'>;
  /** Environment for tool lookup and the build. Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Run the fresh binaries once before declaring the build complete (default true). */
  verify?: boolean;
  lockStaleMs?: number;
}

/**
 * Builds (or finds) llama-server and ggml-rpc-server for a backend from the cached llama.cpp
 * source. Idempotent, safe against concurrent callers (they wait for one build and share it),
 * and resumable after an interruption.
 */
export async function ensureLlamaBuild(opts: LlamaBuildOptions): Promise<LlamaBuild> {
  const env = opts.env ?? process.env;
  const cacheDir = opts.cacheDir ?? strataCacheDir(env);
  const backend = opts.backend;
  if (!LLAMA_BACKENDS.includes(backend)) {
    throw new LlamaInstallError('BAD_OPTIONS', `Unknown llama.cpp backend "${String(backend)}": use one of ${LLAMA_BACKENDS.join(', ')}.`);
  }
  const gpuTargets = normalizeGpuTargets(backend, opts.gpuTargets);
  const label = gpuTargets.length ? `${backend} ${gpuTargets.join(',')}` : backend;
  const root = llamaCacheRoot(cacheDir);
  const dirFor = (commit: string): string => path.join(root, llamaBuildDirName(commit, backend, gpuTargets));

  // Fast path: no lock, no child process, no network. Static binaries do not need the source
  // tree, so a user may delete src-* and keep the builds.
  const version = opts.sourceOptions?.nodeLlamaCppVersion;
  const stamped = opts.source ?? readCachedLlamaSource({ cacheDir, nodeLlamaCppVersion: version, requireTree: false });
  if (stamped) {
    const done = readCompletedBuild(dirFor(stamped.commit), stamped.commit, backend, gpuTargets);
    if (done) return done;
  }
  const known = opts.source ?? readCachedLlamaSource({ cacheDir, nodeLlamaCppVersion: version });

  const progress = (p: InstallProgress): void => opts.onProgress?.(p);
  progress({ phase: 'check', message: `Checking the build tools for llama.cpp (${label})` });
  // Before any download: a missing compiler should not cost a 35 MB fetch first.
  const extraEnv = await requireBuildTools(backend, gpuTargets, env, opts.signal);

  const source =
    known ??
    (await ensureLlamaSource({
      cacheDir,
      env,
      signal: opts.signal,
      onProgress: opts.onProgress,
      lockStaleMs: opts.lockStaleMs,
      ...opts.sourceOptions,
    }));
  const buildDir = dirFor(source.commit);
  const what = `The llama.cpp build (${label})`;
  return withLock(
    buildDir,
    {
      what,
      signal: opts.signal,
      staleMs: opts.lockStaleMs,
      onWait: () => progress({ phase: 'wait', message: `Waiting for another Strata process that is building llama.cpp (${label})` }),
    },
    async (signal) => {
      const done = readCompletedBuild(buildDir, source.commit, backend, gpuTargets);
      if (done) return done;
      await killLeftoverBuild(buildDir);
      return compileLlama({
        backend,
        gpuTargets,
        label,
        source,
        buildDir,
        env,
        extraEnv,
        signal,
        userSignal: !!opts.signal,
        jobs: opts.jobs,
        verify: opts.verify,
        onLog: opts.onLog,
        progress,
      });
    },
  );
}
