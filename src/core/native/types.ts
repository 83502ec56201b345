// Shapes shared by the native addon (through its JSON) and the pure-TypeScript fallbacks.

/**
 * 'cuda' | 'hip' | 'vulkan' | 'metal' | 'cpu' are llama.cpp backends. 'amdgpu' (the Linux kernel
 * driver's sysfs) and 'dxgi' (Windows) are the operating system's view of a GPU, listed because
 * their numbers are the ones that bind (GTT on an APU, the WDDM budget). The same GPU can appear
 * several times (hip + vulkan + amdgpu): join the entries by `pciBusId` (or `luid` on Windows),
 * and never add up entries with `integrated: true`, which all draw on system RAM.
 */
export type Backend = 'cuda' | 'hip' | 'vulkan' | 'metal' | 'cpu' | 'amdgpu' | 'dxgi';

export const ALL_BACKENDS: readonly Backend[] = ['cuda', 'hip', 'vulkan', 'amdgpu', 'dxgi', 'metal', 'cpu'];

export interface MemPool {
  totalBytes: number;
  usedBytes: number;
}

export interface AcceleratorDevice {
  backend: Backend;
  /** Ordinal within the backend (CUDA/HIP device number, Vulkan device among GPUs). */
  index: number;
  name: string;
  /** "sm_90", "gfx1151", "x86_64"; null when unknown. */
  architecture: string | null;
  /** Shares system RAM with the CPU (APU, Apple silicon, the CPU itself); null when unknown. */
  integrated: boolean | null;
  totalBytes: number | null;
  freeBytes: number | null;
  /** What llama.cpp could allocate on it now, by the best source there is. */
  budgetBytes: number | null;
  /** Where free/budget came from: "nvml", "cuda-context", "hipMemGetInfo", "VK_EXT_memory_budget", "amdgpu-sysfs", ... */
  memorySource: string | null;
  /** "0000:c5:00.0", lower case. */
  pciBusId: string | null;
  luid?: string;
  vendorId?: string;
  driverVersion?: string;
  /**
   * amdgpu: the BIOS carve-out (VRAM) and the mappable system RAM (GTT). Vulkan, integrated GPUs:
   * the device-local heaps and the other (host-visible) heaps, both counted by llama.cpp; on RADV
   * the same two pools (docs/vulkan-memory.md).
   */
  vram?: MemPool;
  gtt?: MemPool;
  /**
   * Vulkan: limits.maxStorageBufferRange where the device lacks 64-bit shader indexing. llama.cpp
   * runs no op there whose tensors exceed it (lavapipe: 128 MiB keeps a 152k-vocab output layer
   * on the CPU). Absent: no such limit.
   */
  maxStorageBufferBytes?: number;
}

/** 'absent' (no library, driver or device) is the normal state of most backends on most machines. */
export type BackendState = 'ok' | 'absent' | 'error' | 'unsupported' | 'skipped';

export interface BackendStatus {
  backend: Backend;
  status: BackendState;
  detail?: string;
  library?: string;
  version?: string;
  ms: number;
}

export interface SystemMemory {
  totalBytes: number;
  availableBytes: number;
  source: string;
}

export interface AcceleratorProbe {
  schema: 1;
  /** 'native': the addon answered; 'fallback': TypeScript only (no GPU runtimes asked). */
  via: 'native' | 'fallback';
  system: SystemMemory;
  devices: AcceleratorDevice[];
  backends: BackendStatus[];
  /** Native only: whether it ran in a separate strata_probe process (see ProbeOptions.isolate). */
  isolated?: boolean;
  /** Set when the addon is loaded but its probe failed or timed out. */
  nativeError?: string;
}

/** How a guarded child is tied to this process. 'pidfile' is the fallback: see guard.ts. */
export type GuardKind = 'pdeathsig' | 'kqueue-watcher' | 'job-object' | 'pidfile';

export interface NativeStatus {
  loaded: boolean;
  /** Why it is not loaded, in one line (shown by "Strata: Show Server Status"). */
  reason?: string;
  /** The addon file that was loaded. */
  path?: string;
  guard?: GuardKind;
}
