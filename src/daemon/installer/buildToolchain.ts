import * as fs from 'fs';
import * as path from 'path';
import { LlamaBackend } from './buildSpec';
import { abortedError, LlamaInstallError, toolMissingMessage } from './installError';
import { findOnPath, runProcess } from './runProcess';

// Whether this machine can build a backend at all, checked before any download: cmake, a C++
// compiler, and the backend's own toolkit (glslc, nvcc, ROCm), with the variables cmake needs to
// find what it cannot guess.

export function parseCmakeVersion(output: string): [number, number, number] | undefined {
  const m = /cmake version (\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** Oldest cmake that configures llama.cpp for this backend (llama.cpp's cmake_minimum_required). */
export function minCmakeVersion(backend: LlamaBackend, gpuTargets: readonly string[] = []): [number, number] {
  if (backend === 'hip') return [3, 21];
  if (backend === 'cuda') return gpuTargets.length ? [3, 18] : [3, 24]; // "native" arrived in 3.24
  return [3, 14];
}

/** What a toolchain check may look at; injected so the decisions stay testable. */
export interface ToolProbe {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
  which(cmd: string): string | undefined;
  exists(p: string): boolean;
}

export interface ToolchainOk {
  ok: true;
  /** Variables to add to the configure environment (compiler locations cmake cannot guess). */
  env: Record<string, string>;
}
export interface ToolchainMissing {
  ok: false;
  code: 'TOOL_MISSING' | 'TOOLCHAIN_MISSING';
  message: string;
}

/** cmake and a C++ compiler, then the backend's own toolchain; first problem wins. */
export function checkToolchain(backend: LlamaBackend, probe: ToolProbe): ToolchainOk | ToolchainMissing {
  const missing = (code: ToolchainMissing['code'], message: string): ToolchainMissing => ({ ok: false, code, message });
  if (!probe.which('cmake')) return missing('TOOL_MISSING', toolMissingMessage('cmake', probe.platform));
  // On Windows the Visual Studio generator finds MSVC without PATH, so cmake reports it there.
  if (probe.platform !== 'win32') {
    const cxx = probe.env.CXX?.trim().split(/\s+/)[0];
    const found = cxx ? probe.which(cxx) : ['c++', 'g++', 'clang++'].map((c) => probe.which(c)).find(Boolean);
    if (!found) return missing('TOOL_MISSING', toolMissingMessage('c++', probe.platform));
  }
  const env: Record<string, string> = {};
  const join = probe.platform === 'win32' ? path.win32.join : path.posix.join;
  const exe = probe.platform === 'win32' ? '.exe' : '';
  switch (backend) {
    case 'cpu':
      break;
    case 'vulkan': {
      const sdk = probe.env.VULKAN_SDK;
      if (!probe.which('glslc') && !(sdk && probe.exists(join(sdk, 'bin', `glslc${exe}`)))) {
        const hint = probe.platform === 'linux' ? 'Debian/Ubuntu: sudo apt-get install libvulkan-dev glslc' : 'https://vulkan.lunarg.com/sdk/home';
        return missing(
          'TOOLCHAIN_MISSING',
          `The Vulkan SDK's shader compiler glslc was not found on PATH or in $VULKAN_SDK/bin: install the Vulkan SDK (${hint}) and retry.`,
        );
      }
      break;
    }
    case 'cuda': {
      const candidates = [
        probe.env.CUDACXX,
        probe.which('nvcc'),
        probe.env.CUDA_PATH && join(probe.env.CUDA_PATH, 'bin', `nvcc${exe}`),
        probe.platform === 'linux' ? '/usr/local/cuda/bin/nvcc' : undefined,
      ].filter((p): p is string => !!p);
      const nvcc = candidates.find((p) => probe.exists(p));
      if (!nvcc) {
        return missing(
          'TOOLCHAIN_MISSING',
          'The CUDA compiler nvcc was not found on PATH, in $CUDACXX, $CUDA_PATH or /usr/local/cuda: install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads) and retry.',
        );
      }
      // cmake looks for nvcc only on PATH and in $CUDACXX; /usr/local/cuda is often off PATH.
      if (!probe.env.CUDACXX && nvcc !== probe.which('nvcc')) env.CUDACXX = nvcc;
      break;
    }
    case 'hip': {
      const hipcc = probe.which('hipcc');
      const roots = [
        probe.env.ROCM_PATH,
        probe.env.HIP_PATH,
        hipcc ? path.dirname(path.dirname(hipcc)) : undefined,
        probe.platform === 'linux' ? '/opt/rocm' : undefined,
      ].filter((p): p is string => !!p);
      const root = roots.find((r) => probe.exists(join(r, 'bin', `hipconfig${exe}`)) || probe.exists(join(r, 'bin', `hipcc${exe}`)));
      if (!root) {
        return missing(
          'TOOLCHAIN_MISSING',
          'ROCm/HIP was not found (no hipcc on PATH and no hipconfig in $ROCM_PATH, $HIP_PATH or /opt/rocm): install ROCm 6.1 or newer (https://rocm.docs.amd.com) and retry.',
        );
      }
      // llama.cpp builds HIP as a CMake language; it needs ROCm's clang, which is never on PATH.
      const clang = join(root, 'llvm', 'bin', `clang${exe}`);
      if (!probe.env.HIPCXX && probe.exists(clang)) env.HIPCXX = clang;
      if (!probe.env.HIP_PATH) env.HIP_PATH = root;
      if (!probe.env.ROCM_PATH) env.ROCM_PATH = root;
      break;
    }
  }
  return { ok: true, env };
}

/**
 * Throws the one-sentence LlamaInstallError for the first missing tool or a too old cmake;
 * returns the variables to add to the configure environment.
 */
export async function requireBuildTools(
  backend: LlamaBackend,
  gpuTargets: string[],
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const tools = checkToolchain(backend, realProbe(env));
  if (!tools.ok) throw new LlamaInstallError(tools.code, tools.message);
  await checkCmakeVersion(backend, gpuTargets, env, signal);
  return tools.env;
}

function realProbe(env: NodeJS.ProcessEnv): ToolProbe {
  return { platform: process.platform, env, which: (c) => findOnPath(c, env), exists: (p) => fs.existsSync(p) };
}

async function checkCmakeVersion(backend: LlamaBackend, gpuTargets: string[], env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<void> {
  const r = await runProcess(findOnPath('cmake', env) ?? 'cmake', ['--version'], { env, signal, timeoutMs: 15_000 }).catch(() => undefined);
  if (signal?.aborted) throw abortedError('The llama.cpp build');
  const have = r ? parseCmakeVersion(r.stdout) : undefined;
  if (!have) return; // unusual output: let configure speak for itself
  const [maj, min] = minCmakeVersion(backend, gpuTargets);
  if (have[0] < maj || (have[0] === maj && have[1] < min)) {
    throw new LlamaInstallError(
      'TOOL_MISSING',
      `cmake ${have.join('.')} is too old for llama.cpp's ${backend} build (it needs ${maj}.${min} or newer): install a newer cmake (https://cmake.org/download, or pip install cmake) and retry.`,
    );
  }
}

/**
 * Variables through which cmake finds a toolchain (compilers, the Vulkan SDK's glslc and headers,
 * CUDA, ROCm). A CMakeCache.txt keeps what it found the first time, so a change of any of them
 * must reconfigure: otherwise a retry after "install a newer Vulkan SDK and set VULKAN_SDK"
 * would silently build with the old glslc again.
 */
const TOOLCHAIN_VARS = ['CC', 'CXX', 'VULKAN_SDK', 'CUDACXX', 'CUDA_PATH', 'HIPCXX', 'HIP_PATH', 'ROCM_PATH'] as const;

export function toolchainEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of TOOLCHAIN_VARS) if (env[k]) out[k] = env[k]!;
  return out;
}
