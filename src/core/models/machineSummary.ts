// "Your machine" in a few facts and one sentence: the accelerators the probe found (with the
// amdgpu VRAM carve-out and GTT window on an APU), RAM, free disk, the largest preset coder model
// the planner fits on it ("up to a 70B Q4 model with a 32k context"), and the exact fix where
// memory is held back (kernel GTT parameters, a BIOS carve-out that starves the CPU). Pure: the
// walkthrough's panel renders it, tests feed it probes.

import type { AcceleratorProbe } from '../native/types';
import { planModelFromArch } from './catalog/presetModel';
import { PRESETS, PresetModel } from './catalog/presets';
import { PlannerMachine } from './planner/devices';
import { gttAdvice, gttFixText } from './planner/gtt';
import { gib, ModelPlan, planModel } from './planner/plan';
import { speedLabel } from './planner/speed';

const GiB = 1024 ** 3;

/** Generation speed (the estimate's low end) at which completions keep up with typing. */
export const FAST_TOKS = 15;

export interface GpuFact {
  name: string;
  /** Where the numbers come from: "cuda", "vulkan", "amdgpu", ... (all the probe's views of this GPU). */
  backends: string[];
  architecture?: string;
  integrated: boolean;
  /** What llama.cpp may allocate on it now. */
  budgetBytes: number;
  totalBytes: number;
  /** amdgpu: the BIOS carve-out and the GTT window into system RAM. */
  vramBytes?: number;
  gttBytes?: number;
}

export interface HeldBack {
  kind: 'kernel-gtt' | 'bios-vram';
  /** One sentence: what holds memory back and what to do. */
  text: string;
  /** What to copy: the kernel parameters. */
  copy?: string;
}

export interface Capacity {
  /** "up to a 32B Q4 model with a 32k context" */
  headline: string;
  /** The preset that sets it, e.g. "Qwen2.5 Coder 32B Instruct Q4_K_M, 7–11 tok/s (estimate)". */
  example?: string;
  /** Position among the yardsticks (0: the largest model in its best quant). */
  rank?: number;
  ctx?: number;
  /** A larger model that loads only partly offloaded (slower). */
  beyond?: string;
}

export interface MachineSummary {
  gpus: GpuFact[];
  ram: { totalBytes: number; availableBytes: number };
  disk?: { dir: string; freeBytes: number };
  /** What this machine runs now. */
  capacity: Capacity;
  /** With the fixes below applied (only when they would let a larger model fit). */
  capacityAfterFix?: Capacity;
  /** The largest model fast enough for completions as you type ("Qwen2.5 Coder 7B Instruct Q8_0, 20–31 tok/s (estimate)"), when it is not the headline's. */
  forCompletions?: string;
  heldBack: HeldBack[];
  /** No accelerator found: models run on the CPU. */
  noGpu: boolean;
  /** The probe answered without the native addon (GPU runtimes were not asked). */
  fallbackProbe: boolean;
}

type Yardstick = { p: PresetModel; file: PresetModel['files'][number] };

/** Chat-capable presets in Q8_0 and Q4_K_M, largest model first, the better quant first: what "fits" is measured with. */
function yardsticks(presets: readonly PresetModel[]): Yardstick[] {
  const out: Yardstick[] = [];
  for (const p of [...presets].sort((a, b) => b.arch.parameters - a.arch.parameters)) {
    if (!p.roles.some((r) => r === 'chat' || r === 'both' || r === 'fim')) continue;
    for (const q of ['Q8_0', 'Q4_K_M']) {
      const file = p.files.find((f) => f.quant === q);
      if (file) out.push({ p, file });
    }
  }
  return out;
}

function ctxLabel(n: number): string {
  return n >= 1024 ? `${Math.round(n / 1024)}k` : String(n);
}

/** "70B" from "Llama 3.3 70B Instruct"; the parameter count when the name does not say. */
function sizeLabel(p: PresetModel): string {
  return /\b(\d+(?:\.\d+)?B)\b/.exec(p.displayName)?.[1] ?? `${Math.round(p.arch.parameters / 1e9)}B`;
}

function quantWord(q: string): string {
  return q.startsWith('Q8') ? 'Q8' : q.startsWith('Q4') ? 'Q4' : q;
}

/**
 * The largest yardstick the planner fits wholly on the accelerators (at least a 4k context); on
 * a machine without one, the largest that fits in RAM. A larger one that loads only partly
 * offloaded is named apart: it runs, several times slower.
 */
export function capacityOf(machine: PlannerMachine, presets: readonly PresetModel[] = PRESETS): Capacity {
  let beyond: string | undefined;
  const cpuOnly = machine.devices.length === 0;
  const list = yardsticks(presets);
  for (let i = 0; i < list.length; i++) {
    const { p, file } = list[i];
    const plan: ModelPlan = planModel({
      model: planModelFromArch(p.arch, file.quant, file.sizeBytes),
      machine,
      role: 'chat',
      label: `${p.displayName} ${file.quant}`,
    });
    if (plan.verdict === 'does-not-fit') continue;
    const what = `${sizeLabel(p)} ${quantWord(file.quant)}`;
    if (!cpuOnly && plan.offloadedLayers < p.arch.layers) {
      beyond ??= `a ${what} model also loads with ${plan.offloadedLayers} of ${p.arch.layers} layers on the GPU and the rest on the CPU: ${speedLabel(plan.speed)}`;
      continue;
    }
    return {
      headline: `up to a ${what} model with a ${ctxLabel(plan.ctx)} context${cpuOnly ? ', on the CPU' : ''}`,
      example: `${p.displayName} ${file.quant}, ${speedLabel(plan.speed)}`,
      rank: i,
      ctx: plan.ctx,
      ...(beyond ? { beyond } : {}),
    };
  }
  if (beyond) return { headline: `no preset coder model fits on the GPU alone; ${beyond}`, beyond };
  return { headline: 'no preset coder model fits: free memory, or add a LAN peer (strata-peer) to lend its memory' };
}

/** The largest yardstick that fits wholly and generates at FAST_TOKS or more (its estimate's low end). */
function fastestUseful(machine: PlannerMachine, presets: readonly PresetModel[] = PRESETS): { what: string; rank: number } | undefined {
  const list = yardsticks(presets);
  for (let i = 0; i < list.length; i++) {
    const { p, file } = list[i];
    const plan = planModel({ model: planModelFromArch(p.arch, file.quant, file.sizeBytes), machine, role: 'fim', label: `${p.displayName} ${file.quant}` });
    if (plan.verdict === 'does-not-fit' || (machine.devices.length > 0 && plan.offloadedLayers < p.arch.layers)) continue;
    if (plan.speed.low >= FAST_TOKS) return { what: `${p.displayName} ${file.quant}, ${speedLabel(plan.speed)}`, rank: i };
  }
  return undefined;
}

export interface SummaryInput {
  probe: AcceleratorProbe;
  /** The planner's machine (machineFromProbe), with the llama-server's own device list where known. */
  machine: PlannerMachine;
  disk?: { dir: string; freeBytes: number };
  presets?: readonly PresetModel[];
}

export function summarizeMachine(input: SummaryInput): MachineSummary {
  const { probe, machine } = input;
  const gpus = gpuFacts(probe);
  const heldBack: HeldBack[] = [];
  let fixed: PlannerMachine | undefined;

  // An APU: the GPU reaches system RAM through the GTT window, sized at boot (half of RAM by default).
  const apuIndex = machine.devices.findIndex((d) => d.kind === 'integrated' && d.amdgpu);
  if (apuIndex >= 0) {
    const d = machine.devices[apuIndex];
    const a = gttAdvice(machine.host.totalBytes, d.amdgpu!.vramTotal);
    const now = d.amdgpu!.vramTotal + d.amdgpu!.gttTotal;
    if (a.gpuBytesAfter > now + GiB) {
      heldBack.push({
        kind: 'kernel-gtt',
        text: `The GPU may use only ${gib(now)} of your ${a.installedGiB} GB (the amdgpu driver's default GTT limit): ${gttFixText(a)}.`,
        copy: a.kernelArgs,
      });
      const extra = a.gpuBytesAfter - now;
      fixed = {
        ...machine,
        devices: machine.devices.map((x, i) => (i === apuIndex ? { ...x, budgetBytes: x.budgetBytes + extra, totalBytes: x.totalBytes + extra } : x)),
      };
    }
    // A big carve-out is RAM the CPU never gets back; with GTT raised the GPU does not need it.
    const ramGiB = machine.host.totalBytes / GiB;
    if (d.amdgpu!.vramTotal > 4 * GiB && d.amdgpu!.vramTotal > (ramGiB * GiB) / 8) {
      heldBack.push({
        kind: 'bios-vram',
        text: `The BIOS reserves ${gib(d.amdgpu!.vramTotal)} as VRAM (UMA frame buffer), which the CPU and the OS can never use: set it to its minimum (512 MB) in the BIOS and let the GTT window map RAM instead.`,
      });
    }
  }
  const capacity = capacityOf(machine, input.presets);
  const fast = fastestUseful(machine, input.presets);
  let capacityAfterFix: Capacity | undefined;
  if (fixed) {
    const after = capacityOf(fixed, input.presets);
    const better =
      after.rank !== undefined &&
      (capacity.rank === undefined || after.rank < capacity.rank || (after.rank === capacity.rank && (after.ctx ?? 0) > (capacity.ctx ?? 0)));
    if (better) capacityAfterFix = after;
  }
  return {
    gpus,
    ram: { totalBytes: probe.system.totalBytes, availableBytes: probe.system.availableBytes },
    ...(input.disk ? { disk: input.disk } : {}),
    capacity,
    ...(capacityAfterFix ? { capacityAfterFix } : {}),
    ...(fast && fast.rank !== capacity.rank ? { forCompletions: fast.what } : {}),
    heldBack,
    noGpu: gpus.length === 0 && machine.devices.length === 0,
    fallbackProbe: probe.via === 'fallback',
  };
}

/** One fact per physical GPU: the probe lists a GPU once per runtime (hip, vulkan, amdgpu sysfs). */
export function gpuFacts(probe: AcceleratorProbe): GpuFact[] {
  const byGpu = new Map<string, GpuFact>();
  for (const d of probe.devices) {
    if (d.backend === 'cpu') continue;
    const key = d.pciBusId ?? d.luid ?? `${d.backend}:${d.index}`;
    let f = byGpu.get(key);
    if (!f) {
      f = { name: d.name, backends: [], integrated: d.integrated === true, budgetBytes: 0, totalBytes: 0 };
      byGpu.set(key, f);
    }
    f.backends.push(d.backend);
    f.architecture ??= d.architecture ?? undefined;
    if (d.integrated) f.integrated = true;
    // The OS view (amdgpu sysfs, DXGI) binds on an APU; otherwise the runtime's numbers.
    if (d.vram && d.gtt) {
      f.vramBytes = d.vram.totalBytes;
      f.gttBytes = d.gtt.totalBytes;
      f.totalBytes = d.vram.totalBytes + d.gtt.totalBytes;
      f.budgetBytes = d.budgetBytes ?? f.budgetBytes;
      if (/^(AMD Radeon Graphics|amdgpu)/i.test(f.name) && !/^(AMD Radeon Graphics|amdgpu)/i.test(d.name)) f.name = d.name;
    } else if (!f.vramBytes) {
      f.totalBytes = Math.max(f.totalBytes, d.totalBytes ?? 0);
      f.budgetBytes = Math.max(f.budgetBytes, d.budgetBytes ?? d.freeBytes ?? 0);
    }
  }
  // A Vulkan software rasteriser (llvmpipe) is the CPU, not a GPU.
  return [...byGpu.values()].filter((f) => !/llvmpipe|swiftshader|lavapipe/i.test(f.name));
}
