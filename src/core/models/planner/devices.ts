// The machine as the planner sees it: the devices llama-server will use, what each can take now,
// how fast its memory is, and the host. Two views are merged: llama-server's own
// `--list-devices` (what the chosen binary can use, with llama.cpp's free-memory figure) and the
// accelerator probe (amdgpu sysfs VRAM+GTT, which is what binds on an APU such as Strix Halo, and
// /proc/meminfo for the host).

import type { AcceleratorDevice, AcceleratorProbe, MemPool } from '../../native/types';

export type DeviceKind = 'discrete' | 'integrated' | 'peer';

export interface PlannerDevice {
  /** llama.cpp's device name ("ROCm0", "Vulkan0", "CUDA0", "RPC[10.0.0.2:50052]") or the probe's. */
  id: string;
  name: string;
  kind: DeviceKind;
  /** What llama.cpp may allocate on it now, bytes. */
  budgetBytes: number;
  totalBytes: number;
  bandwidthGBps: number;
  /** Where the bandwidth figure comes from, for the "estimate" label. */
  bandwidthSource: 'table' | 'setting' | 'guess';
  /** Compute-buffer alignment of its buffer type (CUDA/HIP 128, Vulkan/Metal/CPU 32). */
  alignment: number;
  architecture?: string;
  /**
   * An APU's two pools: the BIOS carve-out and the GTT window into system RAM, from amdgpu sysfs
   * or from an integrated GPU's Vulkan heaps (device-local / host-visible). See docs/vulkan-memory.md.
   */
  amdgpu?: { vramTotal: number; gttTotal: number; gttUsed: number; vramUsed: number };
  /** The largest tensor one op may touch on it (Vulkan maxStorageBufferRange); absent: no limit. */
  maxOpBytes?: number;
}

export interface HostMemory {
  totalBytes: number;
  availableBytes: number;
  bandwidthGBps: number;
  bandwidthSource: 'table' | 'setting' | 'guess';
}

export interface PlannerMachine {
  /** Accelerators llama-server will use, in llama.cpp's order (the first holds the output layer with -ngl all). */
  devices: PlannerDevice[];
  host: HostMemory;
  /** An AMD Strix Halo APU (gfx1151) is present: kernel GTT parameters can raise its budget. */
  strixHalo: boolean;
}

/** One line of `llama-server --list-devices`, as the installer parses it. */
export interface ListedDevice {
  name: string;
  backend: string;
  description: string;
  totalMiB?: number;
  freeMiB?: number;
}

export interface MachineOptions {
  /** `llama-server --list-devices` of the binary that will run; omitted: the probe's GPUs. */
  listed?: readonly ListedDevice[];
  /** `strata.models.memoryBandwidthGBps`: overrides every table value. */
  bandwidthGBps?: number;
  /** RPC peers (from the peer manager), appended after local devices as llama.cpp does. */
  peers?: readonly PlannerDevice[];
}

const MiB = 1024 * 1024;

// Peak memory bandwidth, GB/s, by device name or ISA. Generation speed is bounded by it.
const BANDWIDTH: ReadonlyArray<[RegExp, number]> = [
  [/gfx1151|8060S|8050S|Strix Halo|Ryzen AI Max/i, 256],
  [/gfx1150|890M|880M/i, 120],
  [/H200/i, 4800],
  [/H100.*(NVL)/i, 3900],
  [/H100.*PCIe/i, 2000],
  [/H100/i, 3350],
  [/GH200/i, 4000],
  [/A100.*80/i, 2039],
  [/A100/i, 1555],
  [/L40S/i, 864],
  [/RTX 5090/i, 1792],
  [/RTX 4090/i, 1008],
  [/RTX 4080/i, 717],
  [/RTX 3090/i, 936],
  [/RTX 4070/i, 504],
  [/7900 XTX/i, 960],
  [/7900 XT\b/i, 800],
  [/MI300/i, 5300],
  [/M[1-4] Ultra/i, 800],
  [/M[1-4] Max/i, 400],
  [/M[1-4] Pro/i, 200],
  [/Apple M[1-4]/i, 100],
];

/** Host RAM bandwidth when nothing better is known: dual-channel DDR5. */
export const DEFAULT_HOST_BANDWIDTH_GBPS = 80;

export function bandwidthFor(nameOrArch: string): number | undefined {
  for (const [re, gbps] of BANDWIDTH) if (re.test(nameOrArch)) return gbps;
  return undefined;
}

/** A device of llama.cpp's Vulkan backend (its device names are "Vulkan0", "Vulkan1", ...). */
export function isVulkanDevice(d: Pick<PlannerDevice, 'id'>): boolean {
  return /^Vulkan\d+$/.test(d.id);
}

function alignmentFor(backend: string): number {
  return /cuda|rocm|hip/i.test(backend) ? 128 : 32;
}

export function machineFromProbe(probe: AcceleratorProbe, opts: MachineOptions = {}): PlannerMachine {
  const amd = probe.devices.filter((d) => d.backend === 'amdgpu');
  const apu = amd.find((d) => d.integrated === true);
  const strixHalo = amd.some((d) => d.architecture === 'gfx1151') || probe.devices.some((d) => /gfx1151/.test(d.architecture ?? ''));
  const devices: PlannerDevice[] = [];

  const fromProbe = (d: AcceleratorDevice): Pick<PlannerDevice, 'budgetBytes' | 'totalBytes' | 'amdgpu' | 'kind' | 'architecture' | 'maxOpBytes'> => ({
    budgetBytes: d.integrated && d.vram && d.gtt ? unifiedBudget(d.vram, d.gtt, probe.system.availableBytes) : (d.budgetBytes ?? d.freeBytes ?? 0),
    totalBytes: d.totalBytes ?? 0,
    kind: d.integrated ? 'integrated' : 'discrete',
    architecture: d.architecture ?? undefined,
    ...(d.vram && d.gtt ? { amdgpu: { vramTotal: d.vram.totalBytes, vramUsed: d.vram.usedBytes, gttTotal: d.gtt.totalBytes, gttUsed: d.gtt.usedBytes } } : {}),
    ...(d.maxStorageBufferBytes ? { maxOpBytes: d.maxStorageBufferBytes } : {}),
  });
  // The probe's entry for a device llama-server listed: same backend family, same name.
  const probed = (l: ListedDevice): AcceleratorDevice | undefined =>
    probe.devices.find((d) => d.backend !== 'cpu' && d.backend !== 'amdgpu' && backendLabel(d.backend) === l.backend && d.name === l.description);

  const bw = (label: string) => {
    if (opts.bandwidthGBps) return { bandwidthGBps: opts.bandwidthGBps, bandwidthSource: 'setting' as const };
    const t = bandwidthFor(label);
    return t ? { bandwidthGBps: t, bandwidthSource: 'table' as const } : { bandwidthGBps: DEFAULT_HOST_BANDWIDTH_GBPS * 4, bandwidthSource: 'guess' as const };
  };

  if (opts.listed) {
    for (const l of opts.listed) {
      if (l.backend === 'RPC' || l.backend === 'CPU') continue;
      const isAmd = /radeon|amd|gfx/i.test(l.description);
      const label = `${l.description} ${isAmd && apu ? (apu.architecture ?? '') : ''}`;
      const base: PlannerDevice = {
        id: l.name,
        name: l.description,
        kind: 'discrete',
        budgetBytes: (l.freeMiB ?? 0) * MiB,
        totalBytes: (l.totalMiB ?? 0) * MiB,
        alignment: alignmentFor(l.backend),
        ...bw(label),
      };
      // On an APU, the driver's GTT window is the real limit, whatever the runtime reports; an
      // integrated GPU (or a software device such as lavapipe) shares the host's RAM.
      const same = probed(l);
      if (isAmd && apu) Object.assign(base, fromProbe(apu), { kind: 'integrated' as const });
      else if (same?.integrated) Object.assign(base, fromProbe(same), { id: l.name, name: l.description });
      if (same?.maxStorageBufferBytes) base.maxOpBytes = same.maxStorageBufferBytes;
      devices.push(base);
    }
  } else {
    const seen = new Set<string>();
    const gpus = probe.devices.filter((d) => d.backend !== 'cpu' && d.backend !== 'dxgi');
    // Several entries of one GPU (hip + vulkan + amdgpu): one device, sysfs numbers for APUs.
    for (const d of gpus.sort((a, b) => rank(a) - rank(b))) {
      const key = d.pciBusId ?? `${d.backend}${d.index}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const sameGpuApu = d.pciBusId && apu?.pciBusId === d.pciBusId ? apu : undefined;
      const src = sameGpuApu ?? d;
      devices.push({
        id: `${backendLabel(d.backend)}${d.index}`,
        name: d.name,
        alignment: alignmentFor(d.backend),
        ...bw(`${d.name} ${src.architecture ?? ''}`),
        ...fromProbe(src),
      });
    }
  }
  for (const p of opts.peers ?? []) devices.push(p);

  const hostBw = opts.bandwidthGBps
    ? { bandwidthGBps: opts.bandwidthGBps, bandwidthSource: 'setting' as const }
    : apu && bandwidthFor(apu.architecture ?? '')
      ? { bandwidthGBps: bandwidthFor(apu.architecture ?? '')!, bandwidthSource: 'table' as const }
      : { bandwidthGBps: DEFAULT_HOST_BANDWIDTH_GBPS, bandwidthSource: 'guess' as const };
  return {
    devices,
    host: { totalBytes: probe.system.totalBytes, availableBytes: probe.system.availableBytes, ...hostBw },
    strixHalo,
  };
}

/**
 * What llama.cpp can allocate on a GPU that shares system RAM (Strix Halo and other APUs): all of
 * the free carve-out, which the OS never sees, plus the free GTT, which is ordinary RAM and so
 * never more than the host has available. The same rule as the amdgpu sysfs source.
 */
export function unifiedBudget(vram: MemPool, gtt: MemPool, hostAvailable: number): number {
  const vramFree = Math.max(0, vram.totalBytes - vram.usedBytes);
  const gttFree = Math.max(0, gtt.totalBytes - gtt.usedBytes);
  return vramFree + Math.min(gttFree, hostAvailable);
}

function rank(d: AcceleratorDevice): number {
  // llama.cpp backends first (their index is what -dev names), the OS views last.
  return ['cuda', 'hip', 'metal', 'vulkan', 'amdgpu'].indexOf(d.backend);
}

function backendLabel(b: string): string {
  return ({ cuda: 'CUDA', hip: 'ROCm', vulkan: 'Vulkan', metal: 'Metal', amdgpu: 'ROCm' } as Record<string, string>)[b] ?? b;
}
