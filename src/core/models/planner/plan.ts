// The memory planner: for a model and a machine, choose context size, KV cache type, slots,
// offload, mmap and flash attention so that llama-server loads and runs without running out of
// memory, and say so in one sentence: "fits", "fits with a smaller context (N)" or "does not
// fit" with what would make it fit. Every number is what llama.cpp itself will allocate
// (memoryEstimate.ts: weights by layer placement, KV cache, compute buffers by simulating its
// graph allocator), so the verdict can be checked against llama.cpp's own load log.

import { PlannerDevice, PlannerMachine } from './devices';
import { gttAdvice, gttFixText } from './gtt';
import { KvCacheType, isQuantizedKv, kvBytesPerToken } from './kvCache';
import { LayerLayout, PlanModel } from './layout';
import { DeviceMemory, estimateMemory, ReservedMemory } from './memoryEstimate';
import { SpeedEstimate, estimateSpeed } from './speed';

export type Role = 'fim' | 'chat' | 'both' | 'draft';

export interface PlanRequest {
  model: PlanModel;
  machine: PlannerMachine;
  role: Role;
  /** Wanted context (tokens); default by role, capped at the trained context. */
  ctx?: number;
  /** Smallest context worth running (default 4096; FIM and draft 2048). */
  minCtx?: number;
  /** Server slots (parallel sequences); default 1, 2 when one model serves FIM and chat. */
  slots?: number;
  kvType?: KvCacheType | 'auto';
  flashAttn?: boolean;
  /** Keep this much free on each device and on the host (default 1 GiB, as llama.cpp's --fit). */
  marginBytes?: number;
  /** Bytes already promised on each device / the host to another resident model (FIM + chat). */
  reserved?: ReservedMemory;
  /** Run on the CPU only. */
  cpuOnly?: boolean;
  /** One KV pool shared by all slots (default true: slots then cost no extra memory). */
  unified?: boolean;
  nBatch?: number;
  nUbatch?: number;
  /** Other quantizations of the same model, for the "smaller quant" fix. */
  alternatives?: ReadonlyArray<{ label: string; model: PlanModel }>;
  /** Label of this model for messages ("Qwen2.5 Coder 32B Q4_K_M"). */
  label?: string;
}

export type Verdict = 'fits' | 'fits-smaller-context' | 'does-not-fit';

export type FixKind = 'smaller-quant' | 'add-peer' | 'kernel-gtt' | 'bios-vram' | 'free-memory' | 'smaller-context';

export interface Fix {
  kind: FixKind;
  text: string;
  /** For kernel-gtt: the command-line arguments. For smaller-quant: the label. */
  value?: string;
}

export interface ModelPlan {
  verdict: Verdict;
  /** One sentence for the user. */
  summary: string;
  ctx: number;
  wantedCtx: number;
  slots: number;
  unified: boolean;
  typeK: KvCacheType;
  typeV: KvCacheType;
  flashAttn: boolean;
  /** llama.cpp -ngl (n_layer + 1 = everything). */
  gpuLayers: number;
  offloadedLayers: number;
  mmap: boolean;
  nBatch: number;
  nUbatch: number;
  /** --cache-ram for llama-server's prompt cache, MiB (not in the totals: it fills only as slots idle, and is dropped first). */
  cacheRamMiB: number;
  devices: DeviceMemory[];
  host: DeviceMemory;
  /** Sum over devices and host. */
  totalBytes: number;
  speed: SpeedEstimate;
  fixes: Fix[];
  notes: string[];
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const MAX_CACHE_RAM_MIB = 8192;

export function gib(n: number): string {
  if (Math.abs(n) < GiB) return `${Math.round(n / MiB)} MiB`;
  return `${(n / GiB).toFixed(n >= 10 * GiB ? 0 : 1)} GiB`;
}

interface Config {
  ctx: number;
  typeK: KvCacheType;
  typeV: KvCacheType;
  ngl: number;
}

interface Evaluation {
  fits: boolean;
  devices: DeviceMemory[];
  host: DeviceMemory;
  layout: LayerLayout;
  /** Bytes short on the worst place (device or host); 0 when it fits. */
  deficit: number;
}

export function planModel(req: PlanRequest): ModelPlan {
  const m = req.model;
  const devs = req.cpuOnly ? [] : req.machine.devices;
  const margin = req.marginBytes ?? GiB;
  const slots = req.slots ?? (req.role === 'both' ? 2 : 1);
  const trained = m.contextLength || 4096;
  const defaultCtx = req.role === 'fim' || req.role === 'draft' ? 8192 : 32768;
  const wantedCtx = clampCtx(Math.min(req.ctx ?? defaultCtx, trained));
  const minCtx = clampCtx(Math.min(req.minCtx ?? (req.role === 'chat' || req.role === 'both' ? 4096 : 2048), wantedCtx));
  const flashAttn = req.flashAttn ?? true;
  const nBatch = req.nBatch ?? 2048;
  const nUbatch = req.nUbatch ?? 512;
  const unified = req.unified ?? true;
  const fullNgl = m.layers + 1;
  const kvTypes: Array<[KvCacheType, KvCacheType]> =
    req.kvType && req.kvType !== 'auto'
      ? [[req.kvType, flashAttn || !isQuantizedKv(req.kvType) ? req.kvType : 'f16']]
      : flashAttn
        ? [
            ['f16', 'f16'],
            ['q8_0', 'q8_0'],
          ]
        : [['f16', 'f16']];
  const notes: string[] = [];

  const evaluate = (c: Config, extraBudget: number[] = []): Evaluation => {
    const est = estimateMemory(m, devs, { ...c, slots, unified, flashAttn, nBatch, nUbatch }, req.reserved);
    const { devices, layout } = est;
    devices.forEach((d, i) => {
      d.budget += extraBudget[i] ?? 0;
    });
    const host: DeviceMemory = { ...est.host, budget: req.machine.host.availableBytes };
    let deficit = Math.max(0, host.total + margin - host.budget);
    devices.forEach((d, i) => {
      deficit = Math.max(deficit, d.total + margin - d.budget);
      // An APU's GTT is system RAM: what the GPU takes, the host no longer has.
      if (devs[i].kind === 'integrated') {
        const vramFree = devs[i].amdgpu ? Math.max(0, devs[i].amdgpu!.vramTotal - devs[i].amdgpu!.vramUsed) : 0;
        const shared = host.budget + vramFree + (extraBudget[i] ?? 0);
        deficit = Math.max(deficit, d.total + host.total + 2 * margin - shared);
      }
    });
    return { fits: deficit <= 0, devices, host, layout, deficit };
  };

  // 1. Everything on the accelerators at the wanted context, f16 then q8_0 KV.
  // 2. The largest context >= minCtx that fits that way.
  // 3. Partial offload at minCtx (most layers the devices take), the rest on the CPU.
  let chosen: { c: Config; e: Evaluation; verdict: Verdict } | undefined;
  const ngl = devs.length ? fullNgl : 0;
  for (const [typeK, typeV] of kvTypes) {
    const c = { ctx: wantedCtx, typeK, typeV, ngl };
    const e = evaluate(c);
    if (e.fits) {
      chosen = { c, e, verdict: 'fits' };
      if (typeK !== 'f16') notes.push(`KV cache in ${typeK} (half the memory of f16, near-lossless) to keep the ${wantedCtx}-token context.`);
      break;
    }
  }
  if (!chosen) {
    const [typeK, typeV] = kvTypes[kvTypes.length - 1];
    const best = largestCtx(minCtx, wantedCtx, (ctx) => evaluate({ ctx, typeK, typeV, ngl }).fits);
    if (best) {
      const c = { ctx: best, typeK, typeV, ngl };
      chosen = { c, e: evaluate(c), verdict: 'fits-smaller-context' };
    }
  }
  if (!chosen && devs.length) {
    const [typeK, typeV] = kvTypes[kvTypes.length - 1];
    let lo = 0;
    let hi = fullNgl - 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (evaluate({ ctx: minCtx, typeK, typeV, ngl: mid }).fits) lo = mid;
      else hi = mid - 1;
    }
    if (lo > 0) {
      const best = largestCtx(minCtx, wantedCtx, (ctx) => evaluate({ ctx, typeK, typeV, ngl: lo }).fits) ?? minCtx;
      const c = { ctx: best, typeK, typeV, ngl: lo };
      const e = evaluate(c);
      if (e.fits) {
        chosen = { c, e, verdict: best < wantedCtx ? 'fits-smaller-context' : 'fits' };
        notes.push(`Only ${e.layout.offloaded} of ${m.layers} layers fit on the GPU; the rest run on the CPU, which is several times slower.`);
      }
    }
  }

  const failed = !chosen;
  const final =
    chosen ??
    (() => {
      const [typeK, typeV] = kvTypes[kvTypes.length - 1];
      const c = { ctx: minCtx, typeK, typeV, ngl };
      return { c, e: evaluate(c), verdict: 'does-not-fit' as Verdict };
    })();
  const { c, e } = final;

  // Prompt cache: llama-server keeps up to --cache-ram MiB of idle slots' KV in RAM. Give it
  // half of what is left (none when tight), at most llama.cpp's default.
  const hostLeft = hostHeadroom(e, devs, margin);
  const cacheRamMiB = failed ? 0 : Math.max(0, Math.min(MAX_CACHE_RAM_MIB, Math.floor(hostLeft / 2 / MiB / 256) * 256));
  // Kept apart from the totals: it only fills as idle slots are saved, and llama.cpp drops it first.
  const promptCacheBytes = cacheRamMiB * MiB;

  const fullOffload = devs.length > 0 && e.layout.offloaded === m.layers && e.layout.outputDevice >= 0;
  // On an APU a mapped file would sit in the page cache next to its copy in GTT (the same RAM);
  // CPU layers are best mapped (no copy at all).
  const integrated = devs.some((d) => d.kind === 'integrated');
  const mmap = !(fullOffload && integrated);

  const speed = estimateSpeed(speedShares(m, e, devs, req.machine, c), c.ctx, devs.filter((d) => d.kind === 'peer').length);
  const fixes =
    failed || final.verdict === 'fits-smaller-context' || (chosen && notes.some((n) => n.startsWith('Only')))
      ? findFixes(req, evaluate, { ...c, ctx: failed ? minCtx : wantedCtx }, devs, margin, failed)
      : [];
  const totalBytes = e.devices.reduce((s, d) => s + d.total, 0) + e.host.total;
  const label = req.label ?? m.quantLabel;
  const where = fullOffload
    ? describeDevices(e.devices)
    : devs.length && e.layout.offloaded > 0
      ? `${describeDevices(e.devices)} + system RAM`
      : 'system RAM (CPU)';
  let summary: string;
  if (final.verdict === 'fits') {
    summary = `${label} fits: ${gib(totalBytes)} on ${where}, ${c.ctx}-token context${promptCacheBytes ? ` (plus up to ${gib(promptCacheBytes)} of prompt cache in RAM)` : ''}.`;
  } else if (final.verdict === 'fits-smaller-context') {
    summary = `${label} fits with a smaller context (${c.ctx} tokens instead of ${wantedCtx}): a larger KV cache does not fit on ${where}.`;
  } else {
    summary = `${label} does not fit: it needs ${gib(e.deficit)} more than ${where} can give even at a ${minCtx}-token context${fixes[0] ? `; ${fixes[0].text}` : ''}.`;
  }

  return {
    verdict: final.verdict,
    summary,
    ctx: c.ctx,
    wantedCtx,
    slots,
    unified,
    typeK: c.typeK,
    typeV: c.typeV,
    flashAttn,
    gpuLayers: devs.length ? c.ngl : 0,
    offloadedLayers: e.layout.offloaded,
    mmap,
    nBatch,
    nUbatch,
    cacheRamMiB,
    devices: e.devices,
    host: e.host,
    totalBytes,
    speed,
    fixes,
    notes,
  };
}

function clampCtx(n: number): number {
  return Math.max(256, Math.floor(n / 256) * 256);
}

/** Binary search for the largest multiple of 256 in [lo, hi] that fits. */
function largestCtx(lo: number, hi: number, fits: (ctx: number) => boolean): number | undefined {
  if (!fits(lo)) return undefined;
  let a = lo / 256;
  let b = hi / 256;
  while (a < b) {
    const mid = Math.ceil((a + b) / 2);
    if (fits(mid * 256)) a = mid;
    else b = mid - 1;
  }
  return a * 256;
}

function hostHeadroom(e: Evaluation, devs: readonly PlannerDevice[], margin: number): number {
  let left = e.host.budget - e.host.total - margin;
  e.devices.forEach((d, i) => {
    if (devs[i].kind === 'integrated') left -= Math.max(0, d.total - (devs[i].amdgpu ? devs[i].amdgpu!.vramTotal - devs[i].amdgpu!.vramUsed : 0));
  });
  return Math.max(0, left);
}

function describeDevices(ds: readonly DeviceMemory[]): string {
  return ds.map((d) => d.name).join(' + ');
}

function speedShares(m: PlanModel, e: Evaluation, devs: readonly PlannerDevice[], machine: PlannerMachine, c: Config) {
  const expertShare = m.expertCount > 0 ? m.expertUsed / m.expertCount : 1;
  const layerRead = (il: number) => m.layerBytes[il] - m.layerExpertBytes[il] * (1 - expertShare);
  const kvTok = kvBytesPerToken({ ...m, layers: 1 }, c.typeK, c.typeV);
  const shares = devs.map((d) => ({ weightBytes: 0, kvBytesPerToken: 0, layers: 0, bandwidthGBps: d.bandwidthGBps }));
  const host = { weightBytes: 0, kvBytesPerToken: 0, layers: 0, bandwidthGBps: machine.host.bandwidthGBps };
  e.layout.layerDevice.forEach((d, il) => {
    const s = d >= 0 ? shares[d] : host;
    s.weightBytes += layerRead(il);
    s.kvBytesPerToken += kvTok;
    s.layers += 1;
  });
  const outRead = m.outputBytes + (m.tiedOutput ? m.tokenEmbdBytes : 0);
  (e.layout.outputDevice >= 0 ? shares[e.layout.outputDevice] : host).weightBytes += outRead;
  return [...shares, host].filter((s) => s.layers > 0 || s.weightBytes > 0);
}

function findFixes(
  req: PlanRequest,
  evaluate: (c: Config, extra?: number[]) => Evaluation,
  target: Config,
  devs: readonly PlannerDevice[],
  margin: number,
  failed: boolean,
): Fix[] {
  const fixes: Fix[] = [];
  const full = { ...target, ngl: devs.length ? req.model.layers + 1 : 0 };
  const atTarget = evaluate(full);

  // Strix Halo: the GTT window, not the RAM, is usually what is short.
  const apuIndex = devs.findIndex((d) => d.kind === 'integrated' && d.amdgpu);
  if (req.machine.strixHalo && apuIndex >= 0) {
    const d = devs[apuIndex];
    const a = gttAdvice(req.machine.host.totalBytes, d.amdgpu!.vramTotal);
    const currentGpu = d.amdgpu!.vramTotal + d.amdgpu!.gttTotal;
    if (a.gpuBytesAfter > currentGpu + GiB) {
      const extra = devs.map((_, i) => (i === apuIndex ? a.gpuBytesAfter - currentGpu : 0));
      const after = evaluate(full, extra);
      const ramOk = atTarget.devices[apuIndex].total + atTarget.host.total + 2 * margin <= a.gpuBytesAfter;
      if (after.fits || ramOk) {
        fixes.push({ kind: 'kernel-gtt', value: a.kernelArgs, text: gttFixText(a) });
      }
    }
  }

  // A smaller quantization of the same model.
  const alts = [...(req.alternatives ?? [])].sort((x, y) => y.model.fileBytes - x.model.fileBytes);
  for (const alt of alts) {
    if (alt.model.fileBytes >= req.model.fileBytes) continue;
    const sub = planModel({ ...req, model: alt.model, alternatives: [], label: alt.label });
    if (sub.verdict === 'fits' || (failed && sub.verdict === 'fits-smaller-context')) {
      fixes.push({
        kind: 'smaller-quant',
        value: alt.label,
        text: `use ${alt.label} (${gib(alt.model.fileBytes)}), which ${sub.verdict === 'fits' ? 'fits' : `fits with a ${sub.ctx}-token context`}`,
      });
      break;
    }
  }

  // More machines: the deficit at the wanted context, spread over LAN peers by layer.
  const deficit = atTarget.deficit;
  if (deficit > 0) {
    const peers = devs.filter((d) => d.kind === 'peer').length;
    fixes.push({
      kind: 'add-peer',
      text: `add ${peers ? 'another' : 'a'} LAN peer (strata-peer) with at least ${gib(deficit + margin)} free to hold the layers that do not fit here`,
    });
  }
  if (devs.some((d) => d.totalBytes - d.budgetBytes > 4 * GiB && d.kind !== 'integrated')) {
    const d = devs.find((x) => x.totalBytes - x.budgetBytes > 4 * GiB)!;
    fixes.push({ kind: 'free-memory', text: `free memory on ${d.name}: other programs hold ${gib(d.totalBytes - d.budgetBytes)} of it` });
  }
  return fixes;
}
