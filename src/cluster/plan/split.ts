import { ModelLayout } from './layout';

// The layer split: which device holds which layers, as llama-server's -ngl / --tensor-split will
// place them. A pure function of the devices' free memory and the model's per-layer sizes.
//
// llama.cpp's rules, reproduced exactly (src/llama-model.cpp, load_tensors):
//   - devices are ordered: RPC servers first (in --rpc order, each server's devices in its
//     order), then local GPUs;
//   - with -ngl G, the first n_layer+1-G layers stay on the CPU; the rest ("units", the output
//     layer counting as unit n_layer) go to devices by cumulative --tensor-split fractions:
//     unit i goes to the first device whose cumulative fraction exceeds (i - first)/G;
//   - the input embedding always stays on the CPU.
// So --tensor-split given as unit counts (summing to G) places exactly those counts.
//
// Policy: 'auto' uses peers only when the model does not fit on this machine ("a model that fits
// without peers is not spread unless the user asks"), then as few peers as needed, largest
// first, filling this machine's devices before the peers' (fewer network hops); 'split' spreads
// over every device given, in proportion to what each can hold.

export interface SplitDevice {
  /** llama.cpp's name once loaded ("RPC0[127.0.0.1:40001]", "CUDA0"), or a placeholder. */
  id: string;
  /** 'local', or the peer's name. */
  host: string;
  /** For people: "box2 CUDA0 (NVIDIA GeForce RTX 4090)". */
  label: string;
  freeBytes: number;
}

export interface SplitRequest {
  layout: ModelLayout;
  /** In llama.cpp's order: every RPC device in --rpc order, then local GPUs. */
  devices: SplitDevice[];
  /** Host RAM free on this machine: leading layers may stay on the CPU. Undefined: none may. */
  hostFreeBytes?: number;
  mode: 'auto' | 'split';
  /** Kept free on every device: the larger of fraction × free and minBytes. Default 5 %, 512 MiB. */
  headroom?: { fraction: number; minBytes: number };
}

export interface DeviceShare {
  device: SplitDevice;
  /** Units [from, to): layers, where index nLayer is the output layer. */
  from: number;
  to: number;
  holdsOutput: boolean;
  weightsBytes: number;
  kvBytes: number;
  computeBytes: number;
  totalBytes: number;
  /** What it may hold after headroom. */
  budgetBytes: number;
}

export interface SplitPlan {
  fits: boolean;
  /** One sentence: what was decided, or why it does not fit and what to do. */
  summary: string;
  nLayer: number;
  /** Leading layers kept on this machine's CPU. */
  cpuLayers: number;
  cpuBytes: number;
  /** -ngl. */
  ngl: number;
  /** --tensor-split, one entry per device in order (unit counts). */
  tensorSplit: number[];
  /** Devices that hold layers, in order. */
  shares: DeviceShare[];
  /** Peers (host names) that hold layers. */
  peersUsed: string[];
  /** llama-server flags for the split (without --rpc). */
  args: string[];
  /** Which layers where, one line per device, for the user before loading. */
  lines: string[];
}

const GiB = 1024 ** 3;

export function budgetOf(free: number, headroom = { fraction: 0.05, minBytes: 512 * 1024 ** 2 }): number {
  return Math.max(0, free - Math.max(headroom.minBytes, free * headroom.fraction));
}

export function planSplit(req: SplitRequest): SplitPlan {
  const L = req.layout;
  const n = L.layerBytes.length;
  const need = [...L.layerBytes.map((b) => b + L.kvBytesPerLayer), L.outputBytes];
  const budgets = req.devices.map((d) => budgetOf(d.freeBytes, req.headroom));
  const local = req.devices
    .map((d, i) => ({ d, i }))
    .filter((x) => x.d.host === 'local')
    .map((x) => x.i);
  const peers = req.devices
    .map((d, i) => ({ d, i }))
    .filter((x) => x.d.host !== 'local')
    .map((x) => x.i);
  const hostBudget = req.hostFreeBytes !== undefined ? budgetOf(req.hostFreeBytes, req.headroom) : undefined;

  let chosen: number[];
  let assignment: Assignment | undefined;
  if (req.mode === 'split') {
    chosen = req.devices.map((_, i) => i);
    assignment = distribute(need, L, budgets, chosen, 'balanced', hostBudget);
  } else {
    // This machine alone first. Its CPU counts as "this machine" only when it has no accelerator
    // at all; on a GPU box, layers left on the CPU are the last resort, after peers.
    const cpuIsLocal = local.length === 0;
    chosen = local;
    assignment = distribute(need, L, budgets, chosen, 'fill-last', hostBudget, cpuIsLocal);
    if (!assignment) {
      // Add peers, largest first, until it fits (or no peer is left).
      const byBudget = [...peers].sort((a, b) => budgets[b] - budgets[a]);
      for (const p of byBudget) {
        chosen = [...chosen, p].sort((a, b) => a - b);
        assignment = distribute(need, L, budgets, chosen, 'fill-last', hostBudget, false);
        if (assignment) break;
      }
      // Every device together is not enough: leading layers on the CPU too.
      if (!assignment && !cpuIsLocal) assignment = distribute(need, L, budgets, chosen, 'fill-last', hostBudget, true);
    }
  }

  const totalNeed = need.reduce((a, b) => a + b, 0) + L.computeBytes + L.outputComputeBytes;
  if (!assignment) {
    const have = chosen.reduce((a, i) => a + budgets[i], 0) + (hostBudget ?? 0);
    return {
      fits: false,
      nLayer: n,
      cpuLayers: 0,
      cpuBytes: 0,
      ngl: n + 1,
      tensorSplit: req.devices.map(() => 0),
      shares: [],
      peersUsed: [],
      args: [],
      lines: [],
      summary: `The model needs about ${gib(totalNeed)} GiB (weights, KV cache for this context, compute buffers) but ${req.devices.length ? `the devices offer ${gib(have)} GiB after headroom` : 'no device is available'}: add a peer, use a smaller quantization, or lower the context size.`,
    };
  }
  return describe(req, assignment, budgets, n);
}

interface Assignment {
  counts: number[]; // per device in req order
  cpuLayers: number;
  cpuBytes: number;
}

/** Unit counts per device so that each stays within budget; undefined if impossible. */
function distribute(
  need: number[],
  L: ModelLayout,
  budgets: number[],
  chosen: number[],
  how: 'balanced' | 'fill-last',
  hostBudget: number | undefined,
  allowCpu = true,
): Assignment | undefined {
  const n = need.length - 1;
  const maxCpu = allowCpu && hostBudget !== undefined ? n : 0;
  for (let cpu = 0; cpu <= maxCpu; cpu++) {
    const cpuBytes = need.slice(0, cpu).reduce((a, b) => a + b, 0);
    if (cpu > 0 && cpuBytes > (hostBudget ?? 0)) return undefined;
    const units = need.slice(cpu);
    const counts = how === 'balanced' ? balanced(units, L, budgets, chosen) : fillLast(units, L, budgets, chosen);
    if (counts) return { counts, cpuLayers: cpu, cpuBytes };
    if (chosen.length === 0 && cpu === n) {
      // Everything but the output on the CPU and no device: all on the CPU (-ngl 0).
      const all = need.reduce((a, b) => a + b, 0);
      if (hostBudget !== undefined && all <= hostBudget) return { counts: budgets.map(() => 0), cpuLayers: n + 1, cpuBytes: all };
    }
  }
  return undefined;
}

/** Each device's capacity for units, given whether it would hold the output. */
function cap(L: ModelLayout, budget: number, withOutput: boolean): number {
  return budget - L.computeBytes - (withOutput ? L.outputComputeBytes : 0);
}

/** Fill from the last chosen device backwards (local devices come last: they fill first). */
function fillLast(units: number[], L: ModelLayout, budgets: number[], chosen: number[]): number[] | undefined {
  const counts = budgets.map(() => 0);
  let u = units.length - 1;
  for (let k = chosen.length - 1; k >= 0 && u >= 0; k--) {
    const j = chosen[k];
    let room = cap(L, budgets[j], u === units.length - 1);
    while (u >= 0 && units[u] <= room) {
      room -= units[u];
      counts[j] += 1;
      u -= 1;
    }
  }
  return u < 0 ? counts : undefined;
}

/** In proportion to each chosen device's capacity, in order; the last takes the rest. */
function balanced(units: number[], L: ModelLayout, budgets: number[], chosen: number[]): number[] | undefined {
  if (!chosen.length) return units.length === 0 ? budgets.map(() => 0) : undefined;
  const total = units.reduce((a, b) => a + b, 0);
  const caps = chosen.map((j, k) => cap(L, budgets[j], k === chosen.length - 1));
  const capSum = caps.reduce((a, b) => a + Math.max(0, b), 0);
  if (capSum < total) return undefined;
  const counts = budgets.map(() => 0);
  let u = 0;
  let cum = 0;
  let targetCum = 0;
  for (let k = 0; k < chosen.length; k++) {
    const j = chosen[k];
    const last = k === chosen.length - 1;
    targetCum += (total * Math.max(0, caps[k])) / capSum;
    let used = 0;
    while (u < units.length) {
      const fitsCap = used + units[u] <= caps[k];
      // Take a unit while it stays under this device's capacity and (before the last device) its
      // centre lies before the cumulative target.
      if (!fitsCap || (!last && cum + units[u] / 2 > targetCum)) break;
      used += units[u];
      cum += units[u];
      counts[j] += 1;
      u += 1;
    }
  }
  if (u < units.length) return fillLast(units, L, budgets, chosen);
  return counts;
}

function describe(req: SplitRequest, a: Assignment, budgets: number[], n: number): SplitPlan {
  const L = req.layout;
  const shares: DeviceShare[] = [];
  let unit = a.cpuLayers;
  const units = n + 1;
  a.counts.forEach((c, j) => {
    if (c === 0) return;
    const from = unit;
    const to = unit + c;
    unit = to;
    const holdsOutput = to === units;
    const layersTo = Math.min(to, n);
    const weightsBytes = L.layerBytes.slice(from, layersTo).reduce((x, y) => x + y, 0) + (holdsOutput ? L.outputBytes : 0);
    const kvBytes = (layersTo - from) * L.kvBytesPerLayer;
    const computeBytes = L.computeBytes + (holdsOutput ? L.outputComputeBytes : 0);
    shares.push({
      device: req.devices[j],
      from,
      to,
      holdsOutput,
      weightsBytes,
      kvBytes,
      computeBytes,
      totalBytes: weightsBytes + kvBytes + computeBytes,
      budgetBytes: budgets[j],
    });
  });
  const ngl = units - a.cpuLayers;
  const peersUsed = [...new Set(shares.map((s) => s.device.host).filter((h) => h !== 'local'))];
  const args = ['-ngl', String(ngl)];
  if (req.devices.length > 1 && shares.length > 0) args.push('--tensor-split', a.counts.join(','));
  const lines: string[] = [];
  if (a.cpuLayers > 0) lines.push(`this machine's CPU: ${range(0, a.cpuLayers, n)} (${gib(a.cpuBytes)} GiB of RAM)`);
  for (const s of shares) {
    lines.push(
      `${s.device.host === 'local' ? 'this machine' : `peer ${s.device.host}`} · ${s.device.label}: ${range(s.from, s.to, n)}, ${gib(s.totalBytes)} GiB of ${gib(s.device.freeBytes)} GiB free`,
    );
  }
  const localToo = a.cpuLayers > 0 || shares.some((s) => s.device.host === 'local');
  const peerText = `${peersUsed.length} peer${peersUsed.length > 1 ? 's' : ''} (${peersUsed.join(', ')})`;
  const where = !peersUsed.length ? 'on this machine alone' : localToo ? `spread over this machine and ${peerText}` : `on ${peerText}, none on this machine`;
  const why = req.mode === 'split' ? 'as asked' : peersUsed.length ? 'because it does not fit here alone' : 'because it fits here';
  return {
    fits: true,
    nLayer: n,
    cpuLayers: a.cpuLayers,
    cpuBytes: a.cpuBytes,
    ngl,
    tensorSplit: a.counts,
    shares,
    peersUsed,
    args,
    lines,
    summary: `${n} layers + output ${where}, ${why}.`,
  };
}

/** "layers 3–11 + output" for units [from, to) of n layers. */
export function range(from: number, to: number, n: number): string {
  const lastLayer = Math.min(to, n) - 1;
  const out = to > n;
  const layers = lastLayer >= from ? (lastLayer === from ? `layer ${from}` : `layers ${from}–${lastLayer}`) : '';
  return [layers, out ? 'output' : ''].filter(Boolean).join(' + ');
}

function gib(b: number): string {
  return (b / GiB).toFixed(b < 10 * GiB ? 2 : 1);
}

/**
 * llama.cpp's own assignment for --tensor-split values and -ngl (float32 arithmetic as in
 * load_tensors): the device index of each unit (layers 0..n-1, then the output), -1 for the CPU.
 */
export function llamaLayerAssignment(tensorSplit: readonly number[], nLayer: number, ngl: number): number[] {
  const f = Math.fround;
  const nDev = tensorSplit.length;
  const splits = tensorSplit.map((x) => f(x));
  let sum = f(0);
  for (let i = 0; i < nDev; i++) {
    sum = f(sum + splits[i]);
    splits[i] = sum;
  }
  for (let i = 0; i < nDev; i++) splits[i] = f(splits[i] / sum);
  const first = Math.max(nLayer + 1 - ngl, 0);
  const act = Math.min(ngl, nLayer + 1);
  const out: number[] = [];
  for (let il = 0; il <= nLayer; il++) {
    if (il < first || il - first >= act) {
      out.push(-1);
      continue;
    }
    const x = f(f(il - first) / act);
    let j = 0;
    while (j < nDev && !(splits[j] > x)) j++;
    out.push(j);
  }
  return out;
}
