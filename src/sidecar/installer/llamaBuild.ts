import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import { strataCacheDir } from '../../core/paths';
import {
  InstallProgress,
  LlamaInstallError,
  LlamaSource,
  LlamaSourceOptions,
  PINNED_NODE_LLAMA_CPP,
  abortedError,
  ensureLlamaSource,
  findOnPath,
  llamaCacheRoot,
  readCachedLlamaSource,
  runProcess,
  shortCommit,
  toolMissingMessage,
  withLock,
  writeFileAtomic,
} from './llamaSource';

// Builds llama-server and ggml-rpc-server from the cached llama.cpp source for one backend.
//
//   <cache>/llama.cpp/build-<commit12>-<backend>[-<targets>]/
//     bin/llama-server, bin/ggml-rpc-server   (bin/Release/... with multi-config generators)
//     strata-build.log        full output of the last attempt
//     strata-configure.json   configure args that produced CMakeCache.txt
//     strata-build.json       stamp, written last: cmake defines, binary sizes/mtimes, --version
//
// A build dir with a valid stamp is complete; anything else is resumed (cmake is incremental).

export type LlamaBackend = 'cpu' | 'vulkan' | 'hip' | 'cuda';
export const LLAMA_BACKENDS: readonly LlamaBackend[] = ['cpu', 'vulkan', 'hip', 'cuda'];

/** CMake targets we build; ggml-rpc-server's binary is named like its target. */
export const LLAMA_TARGETS = Object.freeze({ server: 'llama-server', rpcServer: 'ggml-rpc-server' });

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

// ---------------------------------------------------------------------------------------------
// Pure helpers

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

/** Percent done from one build output line: Makefiles' "[ 45%]" or Ninja's "[12/345]". */
export function parseBuildPercent(line: string): number | undefined {
  const make = /^\s*\[\s*(\d{1,3})%\]/.exec(line);
  if (make) return Math.min(100, Number(make[1]));
  const ninja = /^\s*\[(\d+)\/(\d+)\]/.exec(line);
  if (ninja && Number(ninja[2]) > 0) return Math.min(100, Math.floor((100 * Number(ninja[1])) / Number(ninja[2])));
  return undefined;
}

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
    const found = cxx ? probe.which(cxx) : (['c++', 'g++', 'clang++'].map((c) => probe.which(c)).find(Boolean));
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
        const hint =
          probe.platform === 'linux'
            ? 'Debian/Ubuntu: sudo apt-get install libvulkan-dev glslc'
            : 'https://vulkan.lunarg.com/sdk/home';
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

/** One sentence for a failed configure or compile step, pointing at the log. */
/**
 * Configure failures whose cause is a known missing package, recognised in cmake's output.
 * Diagnosed after the fact on purpose: probing for these libraries up front would wrongly block
 * toolkits laid out in ways we did not foresee (conda, pip wheels, distro packages).
 */
const KNOWN_CAUSES: readonly { test: RegExp; fix: string }[] = [
  {
    test: /links to:\s+CUDA::cublas|cublas_v2\.h: No such file/,
    fix: "the CUDA toolkit lacks cuBLAS, which llama.cpp's CUDA backend needs: install the cuBLAS development files of that toolkit (NVIDIA's apt repo: libcublas-dev-<version>) and retry",
  },
  {
    test: /Could NOT find Vulkan|vulkan\/vulkan\.h: No such file/,
    fix: 'the Vulkan headers and loader were not found: install them (Debian/Ubuntu: sudo apt-get install libvulkan-dev glslc, or the LunarG Vulkan SDK) and retry',
  },
  {
    test: /package configuration file provided by\s+"SPIRV-Headers"/,
    fix: 'the SPIR-V headers were not found: install them (Debian/Ubuntu: sudo apt-get install spirv-headers, or the LunarG Vulkan SDK) and retry',
  },
  {
    // Debian 12's glslc (shaderc 2023.2, glslang 12) lacks it; llama.cpp compiles such a shader
    // whatever its configure test found, and fails the shader on the warning alone.
    test: /'#extension' : extension not supported: GL_KHR_cooperative_matrix/,
    fix: "the Vulkan SDK's shader compiler glslc is too old for this llama.cpp (its shaders need GL_KHR_cooperative_matrix; Debian 12's glslc lacks it): install a Vulkan SDK from 2024 or later (LunarG, or the glslc and libvulkan-dev of Ubuntu 24.04 or Debian 13), point VULKAN_SDK at it and retry",
  },
  {
    test: /'VkPhysicalDeviceCooperativeMatrix\w*KHR' (was not declared|does not name a type)/,
    fix: "the Vulkan headers are older than the glslc in use (they lack VK_KHR_cooperative_matrix): install the headers of the same Vulkan SDK as glslc (libvulkan-dev of the same release, or the LunarG SDK), point VULKAN_SDK at it and retry",
  },
  {
    test: /package configuration file provided by\s+"(hipblas|rocblas|hip)"|hipblas-config\.cmake|rocblas-config\.cmake/,
    fix: 'ROCm lacks hipBLAS/rocBLAS, which llama.cpp\'s HIP backend needs: install them (ROCm apt repo: sudo apt-get install hipblas-dev rocblas-dev) and retry',
  },
  {
    test: /No CMAKE_HIP_COMPILER could be found/,
    fix: "cmake could not find ROCm's clang for HIP: set HIPCXX to <rocm>/llvm/bin/clang and retry",
  },
];

export function buildFailureMessage(
  step: 'configure' | 'compile',
  label: string,
  code: number | null,
  tail: string,
  logPath: string,
  /** Set when this attempt resumed an earlier one, whose leftovers may be the cause. */
  resumedIn?: string,
): string {
  const known = KNOWN_CAUSES.find((c) => c.test.test(tail));
  if (known) return `${step === 'configure' ? 'Configuring' : 'Compiling'} llama.cpp (${label}) failed because ${known.fix}; the full log is ${logPath}.`;
  const lines = tail.split('\n');
  const firstError = lines.find((l) => /CMake Error|error:|\berror\b.*:|Error \d+/.test(l))?.trim();
  const oom = /Killed signal terminated program|out of memory|virtual memory exhausted|cannot allocate memory/i.test(tail);
  const what = step === 'configure' ? `Configuring llama.cpp (${label})` : `Compiling llama.cpp (${label})`;
  const at = firstError ? ` at "${firstError.length > 160 ? firstError.slice(0, 157) + '...' : firstError}"` : ` (cmake exit ${code})`;
  if (oom) return `${what} ran out of memory${at}: retry with fewer parallel jobs (--jobs 1); the full log is ${logPath}.`;
  const resume =
    step !== 'compile' ? '' : resumedIn ? ` (it resumed an earlier build; if it fails the same way again, delete ${resumedIn} to start clean)` : ' (the build resumes where it stopped)';
  return `${what} failed${at}: read ${logPath} for the full output, fix the cause and retry${resume}.`;
}

// ---------------------------------------------------------------------------------------------
// Stamp and binaries

interface BinaryFacts {
  rel: string;
  size: number;
  mtimeMs: number;
}

interface BuildStamp {
  schema: 1;
  commit: string;
  backend: LlamaBackend;
  gpuTargets: string[];
  cmakeDefines: string[];
  server: BinaryFacts;
  rpcServer: BinaryFacts;
  version: string;
  builtAt: string;
  buildSeconds: number;
}

const STAMP = 'strata-build.json';
const CONFIGURE_MARK = 'strata-configure.json';
const LOG = 'strata-build.log';

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

function exeName(base: string): string {
  return process.platform === 'win32' ? `${base}.exe` : base;
}

function findBinary(buildDir: string, target: string): string | undefined {
  for (const rel of [path.join('bin', exeName(target)), path.join('bin', 'Release', exeName(target))]) {
    if (fs.existsSync(path.join(buildDir, rel))) return rel;
  }
  return undefined;
}

function facts(buildDir: string, rel: string): BinaryFacts {
  const st = fs.statSync(path.join(buildDir, rel));
  return { rel, size: st.size, mtimeMs: st.mtimeMs };
}

function sameFacts(buildDir: string, f: BinaryFacts | undefined): boolean {
  if (!f || typeof f.rel !== 'string') return false;
  try {
    const st = fs.statSync(path.join(buildDir, f.rel));
    return st.isFile() && st.size === f.size && st.mtimeMs === f.mtimeMs;
  } catch {
    return false;
  }
}

/**
 * The finished build in buildDir, or undefined. Synchronous and child-free (a stat per binary),
 * so a cached build is found in about a millisecond. Matching size and mtime prove the binaries
 * are the ones that passed the --version check at build time; re-running --version here would
 * cost seconds on GPU builds, where it initialises the driver.
 */
export function readCompletedBuild(buildDir: string, commit: string, backend: LlamaBackend, gpuTargets: readonly string[]): LlamaBuild | undefined {
  let stamp: BuildStamp;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(buildDir, STAMP), 'utf8')) as BuildStamp;
  } catch {
    return undefined;
  }
  if (
    stamp.schema !== 1 ||
    stamp.commit !== commit ||
    stamp.backend !== backend ||
    JSON.stringify(stamp.cmakeDefines) !== JSON.stringify(llamaCmakeDefines(backend, gpuTargets)) ||
    !sameFacts(buildDir, stamp.server) ||
    !sameFacts(buildDir, stamp.rpcServer)
  ) {
    return undefined;
  }
  const serverPath = path.join(buildDir, stamp.server.rel);
  return {
    binDir: path.dirname(serverPath),
    serverPath,
    rpcServerPath: path.join(buildDir, stamp.rpcServer.rel),
    commit,
    backend,
    buildDir,
    gpuTargets: [...gpuTargets],
    logPath: path.join(buildDir, LOG),
    version: stamp.version,
    built: false,
  };
}

function realProbe(env: NodeJS.ProcessEnv): ToolProbe {
  return { platform: process.platform, env, which: (c) => findOnPath(c, env), exists: (p) => fs.existsSync(p) };
}

// ---------------------------------------------------------------------------------------------
// The build

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
  const tools = checkToolchain(backend, realProbe(env));
  if (!tools.ok) throw new LlamaInstallError(tools.code, tools.message);
  await checkCmakeVersion(backend, gpuTargets, env, opts.signal);

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
      return runBuild({ ...opts, userSignal: !!opts.signal, env, signal, backend, gpuTargets, label, source, buildDir, extraEnv: tools.env, progress });
    },
  );
}

/**
 * Kills what an earlier, dead holder of the lock left compiling here (its own process group
 * survives it when it was killed hard), so that two makes never write the same objects. We hold
 * the lock, so every process whose cwd is in this build dir is such a leftover. Linux only (it
 * reads /proc); elsewhere a leftover simply finishes on its own.
 */
// /proc/<pid>/comm names (15 chars at most) of what a cmake build runs.
const BUILD_TOOL_COMM =
  /^(cmake|g?make|ninja|sh|dash|cc1|cc1plus|cc|c\+\+|gcc|g\+\+|.*-g(cc|\+\+)(-\d+)?|clang(\+\+)?(-\d+)?|as|ld|ld\.\w+|collect2|lto1|lto-wrapper|nvcc|cicc|ptxas|fatbinary|nvlink|cudafe\+\+|hipcc|glslc|vulkan-shaders-?.*)$/;

async function killLeftoverBuild(buildDir: string): Promise<void> {
  if (process.platform !== 'linux') return;
  const dir = await fsp.realpath(buildDir).catch(() => undefined);
  if (!dir) return;
  const pids = await fsp.readdir('/proc').catch(() => [] as string[]);
  const found: number[] = [];
  for (const pid of pids) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cwd = await fsp.readlink(`/proc/${pid}/cwd`);
      if (cwd !== dir && !cwd.startsWith(dir + path.sep)) continue;
      // Only build tools: a user's shell or a llama-server started from bin/ also sits here.
      const comm = (await fsp.readFile(`/proc/${pid}/comm`, 'utf8')).trim();
      if (BUILD_TOOL_COMM.test(comm)) found.push(Number(pid));
    } catch {
      /* gone, or not ours to read */
    }
  }
  if (!found.length) return;
  const signalAll = (sig: NodeJS.Signals | 0): number[] =>
    found.filter((pid) => {
      try {
        process.kill(pid, sig);
        return true;
      } catch {
        return false;
      }
    });
  // SIGTERM first: make then deletes the half-written objects it was producing, which would
  // otherwise look up to date and break the resumed build's link.
  signalAll('SIGTERM');
  for (let i = 0; i < 50 && signalAll(0).length; i++) await new Promise((r) => setTimeout(r, 100));
  signalAll('SIGKILL');
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

interface RunBuildArgs extends LlamaBuildOptions {
  /** The caller can cancel: worth a process group to kill (see RunOptions.ownGroup). */
  userSignal: boolean;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  gpuTargets: string[];
  label: string;
  source: LlamaSource;
  buildDir: string;
  extraEnv: Record<string, string>;
  progress: (p: InstallProgress) => void;
}

async function runBuild(a: RunBuildArgs): Promise<LlamaBuild> {
  const started = Date.now();
  const { buildDir, backend, gpuTargets, label, progress } = a;
  const logPath = path.join(buildDir, LOG);
  await fsp.mkdir(buildDir, { recursive: true });
  // A stale stamp must not vouch for binaries this run is about to replace.
  await fsp.rm(path.join(buildDir, STAMP), { force: true });
  const log = fs.createWriteStream(logPath, { flags: 'w' });
  const logLine = (s: string): void => {
    log.write(s + '\n');
  };
  const env = { ...a.env, ...a.extraEnv };
  const defines = llamaCmakeDefines(backend, gpuTargets);
  const configureArgs = llamaConfigureArgs(a.source.srcDir, buildDir, defines);
  const jobs = Math.max(1, Math.floor(a.jobs ?? (os.availableParallelism?.() ?? os.cpus().length)));
  try {
    logLine(`# Strata llama.cpp build ${new Date().toISOString()} commit ${a.source.commit} backend ${label} jobs ${jobs}`);
    if (Object.keys(a.extraEnv).length) logLine(`# env ${JSON.stringify(a.extraEnv)}`);

    // Skip configure when the cache came from these exact args, so a resumed build continues
    // rather than regenerating everything. Different args (or a moved source dir) get a fresh cache, since cmake keeps stale
    // options and refuses a cache made for another source dir.
    const mark = JSON.stringify({ args: configureArgs, env: a.extraEnv, toolchain: toolchainEnv(env) });
    const cacheFile = path.join(buildDir, 'CMakeCache.txt');
    const prevMark = await fsp.readFile(path.join(buildDir, CONFIGURE_MARK), 'utf8').catch(() => undefined);
    const reconfigured = !fs.existsSync(cacheFile) || prevMark !== mark;
    if (reconfigured) {
      await fsp.rm(cacheFile, { force: true });
      await fsp.rm(path.join(buildDir, CONFIGURE_MARK), { force: true });
      progress({ phase: 'configure', message: `Configuring llama.cpp (${label})` });
      logLine(`# cmake ${configureArgs.join(' ')}`);
      const r = await runCmake(configureArgs, env, a, log);
      if (r.aborted) throw abortedError('The llama.cpp build');
      if (r.code !== 0) {
        // The cause can sit far above the tail (cmake goes on to print its summary), and a
        // configure log is small: search all of it.
        const whole = await fsp.readFile(logPath, 'utf8').catch(() => r.tail);
        const firstErr = whole.split('\n').find((l) => l.startsWith('CMake Error'));
        const text = firstErr ? `${firstErr}\n${whole}` : r.tail;
        throw new LlamaInstallError('CONFIGURE_FAILED', buildFailureMessage('configure', label, r.code, text, logPath), logPath, r.tail);
      }
      await writeFileAtomic(path.join(buildDir, CONFIGURE_MARK), mark);
    } else {
      logLine('# configure skipped: CMakeCache.txt matches');
    }

    progress({ phase: 'build', message: `Compiling llama.cpp (${label}) with ${jobs} jobs`, percent: 0 });
    const buildArgs = llamaBuildArgs(buildDir, jobs);
    logLine(`# cmake ${buildArgs.join(' ')}`);
    let last = -1;
    const r = await runCmake(buildArgs, env, a, log, (line) => {
      const p = parseBuildPercent(line);
      // Several targets share one counter that never goes back; keep it monotonic anyway.
      if (p !== undefined && p > last) {
        last = p;
        progress({ phase: 'build', message: `Compiling llama.cpp (${label})`, percent: p });
      }
    });
    if (r.aborted) throw abortedError('The llama.cpp build');
    if (r.code !== 0) {
      const resumedIn = reconfigured ? undefined : buildDir;
      // With parallel jobs the cause (a glslc warning, say) can scroll out of the tail while the
      // other jobs finish: look for a known one in the whole log.
      const whole = await fsp.readFile(logPath, 'utf8').catch(() => '');
      const text = KNOWN_CAUSES.some((c) => c.test.test(whole)) && !KNOWN_CAUSES.some((c) => c.test.test(r.tail)) ? `${whole}\n${r.tail}` : r.tail;
      throw new LlamaInstallError('BUILD_FAILED', buildFailureMessage('compile', label, r.code, text, logPath, resumedIn), logPath, r.tail);
    }

    const serverRel = findBinary(buildDir, LLAMA_TARGETS.server);
    const rpcRel = findBinary(buildDir, LLAMA_TARGETS.rpcServer);
    if (!serverRel || !rpcRel) {
      throw new LlamaInstallError(
        'BUILD_FAILED',
        `The llama.cpp build finished but ${!serverRel ? LLAMA_TARGETS.server : LLAMA_TARGETS.rpcServer} is not in ${path.join(buildDir, 'bin')}: read ${logPath}, then delete ${buildDir} and retry.`,
        logPath,
      );
    }
    const serverPath = path.join(buildDir, serverRel);
    const rpcServerPath = path.join(buildDir, rpcRel);

    let version = '';
    if (a.verify !== false) {
      progress({ phase: 'verify', message: 'Checking that the new binaries run' });
      version = await verifyBinary(serverPath, ['--version'], a, log, logPath);
      // build-info takes the commit from git at configure time; "unknown" when git was missing.
      const reported = /commit ([0-9a-f]{7,40})\b/.exec(version)?.[1];
      if (reported && !a.source.commit.startsWith(reported)) {
        throw new LlamaInstallError(
          'VERIFY_FAILED',
          `The built llama-server reports commit ${reported}, not ${shortCommit(a.source.commit)}: the source tree ${a.source.srcDir} was changed, so delete it and ${buildDir} and retry.`,
          logPath,
        );
      }
      // rpc-server has no --version; --help exits 0 after printing usage, before touching devices.
      await verifyBinary(rpcServerPath, ['--help'], a, log, logPath);
    }

    const stamp: BuildStamp = {
      schema: 1,
      commit: a.source.commit,
      backend,
      gpuTargets,
      cmakeDefines: defines,
      server: facts(buildDir, serverRel),
      rpcServer: facts(buildDir, rpcRel),
      version,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
    await writeFileAtomic(path.join(buildDir, STAMP), JSON.stringify(stamp, null, 2) + '\n');
    logLine(`# done in ${stamp.buildSeconds} s`);
    progress({ phase: 'done', message: `llama.cpp (${label}) is ready in ${path.dirname(serverPath)}`, percent: 100 });
    return {
      binDir: path.dirname(serverPath),
      serverPath,
      rpcServerPath,
      commit: a.source.commit,
      backend,
      buildDir,
      gpuTargets,
      logPath,
      version,
      built: true,
    };
  } finally {
    await new Promise<void>((resolve) => log.end(resolve));
  }
}

async function runCmake(args: string[], env: NodeJS.ProcessEnv, a: RunBuildArgs, log: fs.WriteStream, onLine?: (l: string) => void) {
  try {
    return await runProcess(findOnPath('cmake', env) ?? 'cmake', args, {
      env,
      // cwd inside the build dir marks every process of this build (see killLeftoverBuild).
      cwd: a.buildDir,
      signal: a.signal,
      ownGroup: a.userSignal,
      log,
      onLine: (line) => {
        onLine?.(line);
        a.onLog?.(line);
      },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LlamaInstallError('TOOL_MISSING', toolMissingMessage('cmake'));
    throw err;
  }
}

async function verifyBinary(bin: string, args: string[], a: RunBuildArgs, log: fs.WriteStream, logPath: string): Promise<string> {
  log.write(`# ${bin} ${args.join(' ')}\n`);
  const r = await runProcess(bin, args, { env: a.env, signal: a.signal, log, timeoutMs: 60_000 });
  if (r.aborted) throw abortedError('The llama.cpp build');
  if (r.code !== 0) {
    throw new LlamaInstallError(
      'VERIFY_FAILED',
      `The freshly built ${path.basename(bin)} does not run (${args.join(' ')} exited with ${r.code ?? r.signal}${r.timedOut ? ', timed out' : ''}): read ${logPath}; for GPU backends check that the driver is installed.`,
      logPath,
      r.tail,
    );
  }
  // llama-server prints its version to stderr, after a log line or two.
  return r.tail
    .split('\n')
    .filter((l) => /^version:|^built with/.test(l.trim()))
    .join('\n') || r.tail.trim().split('\n').slice(-2).join('\n');
}

/** For callers that only need the pinned commit without touching disk (e.g. test assertions). */
export const PINNED_LLAMA_COMMIT = PINNED_NODE_LLAMA_CPP.llamaCommit;
