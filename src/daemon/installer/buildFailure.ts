// Turns a failed configure or compile into one sentence: a known cause (a missing package, a too
// old glslc) with its fix, running out of memory, or the first error line and the log to read.

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
    fix: 'the Vulkan headers are older than the glslc in use (they lack VK_KHR_cooperative_matrix): install the headers of the same Vulkan SDK as glslc (libvulkan-dev of the same release, or the LunarG SDK), point VULKAN_SDK at it and retry',
  },
  {
    test: /package configuration file provided by\s+"(hipblas|rocblas|hip)"|hipblas-config\.cmake|rocblas-config\.cmake/,
    fix: "ROCm lacks hipBLAS/rocBLAS, which llama.cpp's HIP backend needs: install them (ROCm apt repo: sudo apt-get install hipblas-dev rocblas-dev) and retry",
  },
  {
    test: /No CMAKE_HIP_COMPILER could be found/,
    fix: "cmake could not find ROCm's clang for HIP: set HIPCXX to <rocm>/llvm/bin/clang and retry",
  },
];

/** Whether the text shows a cause buildFailureMessage can name. */
export function hasKnownCause(text: string): boolean {
  return KNOWN_CAUSES.some((c) => c.test.test(text));
}

/** One sentence for a failed configure or compile step, pointing at the log. */
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
    step !== 'compile'
      ? ''
      : resumedIn
        ? ` (it resumed an earlier build; if it fails the same way again, delete ${resumedIn} to start clean)`
        : ' (the build resumes where it stopped)';
  return `${what} failed${at}: read ${logPath} for the full output, fix the cause and retry${resume}.`;
}
