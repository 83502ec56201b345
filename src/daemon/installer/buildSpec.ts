import { LlamaInstallError } from './installError';
import { shortCommit } from './llamaSource';

// What defines one llama.cpp build: the backend, its GPU targets, and the cmake arguments and
// build-dir name that follow from them (they are the cache key). Pure, so they are unit-tested.

export type LlamaBackend = 'cpu' | 'vulkan' | 'hip' | 'cuda';
export const LLAMA_BACKENDS: readonly LlamaBackend[] = ['cpu', 'vulkan', 'hip', 'cuda'];

/** CMake targets we build; ggml-rpc-server's binary is named like its target. */
export const LLAMA_TARGETS = Object.freeze({ server: 'llama-server', rpcServer: 'ggml-rpc-server' });

export interface LlamaBuild {
  binDir: string;
  serverPath: string;
  rpcServerPath: string;
  commit: string;
  backend: LlamaBackend;
  buildDir: string;
  gpuTargets: string[];
  logPath: string;
  /** `llama-server --version` output recorded when it was built. */
  version: string;
  /** True when this call compiled; false when it found a finished build. */
  built: boolean;
}

/** Splits, validates, dedupes and sorts GPU targets; they are part of the cache key. */
export function normalizeGpuTargets(backend: LlamaBackend, targets: readonly string[] | undefined): string[] {
  const list = [...new Set((targets ?? []).flatMap((t) => t.split(/[,;\s]+/)).filter(Boolean))].sort();
  if (!list.length) return [];
  if (backend !== 'hip' && backend !== 'cuda') {
    throw new LlamaInstallError('BAD_OPTIONS', `GPU targets apply only to the hip and cuda backends, not ${backend}: drop --gpu-targets and retry.`);
  }
  const ok = backend === 'hip' ? /^gfx[0-9a-f]+(:[a-z-]+[+-])*$/i : /^([0-9]{2,3}[a-z]?(-real|-virtual)?|native|all|all-major)$/;
  const bad = list.filter((t) => !ok.test(t));
  if (bad.length) {
    const example = backend === 'hip' ? 'gfx1151 or gfx1100' : '90 or 86-real';
    throw new LlamaInstallError('BAD_OPTIONS', `Invalid ${backend} GPU target ${bad.join(', ')}: use names like ${example} and retry.`);
  }
  return list;
}

export function llamaBuildDirName(commit: string, backend: LlamaBackend, gpuTargets: readonly string[] = []): string {
  const t = gpuTargets.map((x) => x.replace(/[^A-Za-z0-9.]+/g, '_')).join('_');
  return `build-${shortCommit(commit)}-${backend}${t ? `-${t}` : ''}`;
}

/**
 * The -D flags that define a build; they are the cache key's content (the stamp records them,
 * and a change makes the build dir rebuild). Static so the binaries can be copied anywhere.
 */
export function llamaCmakeDefines(backend: LlamaBackend, gpuTargets: readonly string[] = []): string[] {
  const d = [
    '-DCMAKE_BUILD_TYPE=Release',
    '-DGGML_RPC=ON',
    '-DLLAMA_OPENSSL=OFF',
    '-DLLAMA_USE_PREBUILT_UI=OFF',
    '-DBUILD_SHARED_LIBS=OFF',
    '-DLLAMA_BUILD_TESTS=OFF',
    '-DLLAMA_BUILD_EXAMPLES=OFF',
    // Explicit OFF (not the default) makes ggml enable AVX/AVX2/FMA/F16C as a portable x86-64
    // baseline rather than -march=native, so a cache on a shared home works on sibling machines.
    '-DGGML_NATIVE=OFF',
  ];
  switch (backend) {
    case 'cpu':
      break;
    case 'vulkan':
      d.push('-DGGML_VULKAN=ON');
      break;
    case 'hip':
      d.push('-DGGML_HIP=ON');
      if (gpuTargets.length) d.push(`-DAMDGPU_TARGETS=${gpuTargets.join(';')}`);
      break;
    case 'cuda':
      d.push('-DGGML_CUDA=ON');
      // Without targets, llama.cpp's own default with GGML_NATIVE=OFF compiles ~8 architectures
      // (very slow); "native" builds for the GPUs present, which is what "for this machine" means.
      d.push(`-DCMAKE_CUDA_ARCHITECTURES=${gpuTargets.length ? gpuTargets.join(';') : 'native'}`);
      break;
  }
  return d;
}

export function llamaConfigureArgs(srcDir: string, buildDir: string, defines: readonly string[]): string[] {
  return ['-S', srcDir, '-B', buildDir, ...defines];
}

export function llamaBuildArgs(buildDir: string, jobs: number): string[] {
  // --config matters only for multi-config generators (Visual Studio, Xcode); harmless elsewhere.
  return ['--build', buildDir, '--config', 'Release', '-j', String(jobs), '--target', LLAMA_TARGETS.server, LLAMA_TARGETS.rpcServer];
}
