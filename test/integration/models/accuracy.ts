// Planner vs llama.cpp: predict the memory of one configuration, then make the real llama-server
// say what it allocates for that configuration, and compare component by component. Used by
// the integration test (tiny models, shape files) and by bench/models-accuracy.ts.
//
// Two ways to ask llama.cpp: 'load' starts llama-server and reads the buffer lines it prints
// while loading (2 decimals of MiB; needs -lv 4 in this build); 'fit' reads the breakdown table
// that --fit prints from a no-alloc dry run before loading (whole MiB), which costs no memory and
// no time for a 70B model. Either way the server is stopped as soon as the numbers are out.

import { inspectModel, ModelInfo } from '../../../src/core/models/inspect/modelInfo';
import { planArgs } from '../../../src/core/models/planner/args';
import { KvCacheType } from '../../../src/core/models/planner/kvCache';
import { parseLoadLog, sumBuffers } from '../../../src/core/models/planner/loadLog';
import type { PlannerDevice } from '../../../src/core/models/planner/devices';
import { estimateMemory, logitsBytes } from '../../../src/core/models/planner/memoryEstimate';
import { ModelPlan } from '../../../src/core/models/planner/plan';
import { getLlamaBinaries } from '../../harness/llamaBinaries';
import { pickFreePort } from '../../../src/daemon/ports';
import { startProcess, tail } from '../../harness/processes';

export interface AccuracyCase {
  label: string;
  model: string;
  ctx: number;
  slots: number;
  unified?: boolean;
  flashAttn: boolean;
  kv?: KvCacheType;
  nUbatch?: number;
  mode: 'load' | 'fit';
  /**
   * Run on one GPU device instead of the CPU (-ngl all): another llama-server build, the
   * environment it needs and the planner's view of the device. Device buffers are compared.
   */
  gpu?: { serverPath: string; env: Record<string, string>; device: PlannerDevice };
}

export interface Components {
  weights: number;
  kv: number;
  compute: number;
  /** Logits buffer ('load' mode only: the breakdown table does not show it). */
  output?: number;
}

export interface AccuracyResult {
  c: AccuracyCase;
  predicted: Components;
  actual: Components;
  info: ModelInfo;
}

const infoCache = new Map<string, Promise<ModelInfo>>();

export function predictCpu(info: ModelInfo, c: AccuracyCase): Components {
  const est = estimateMemory(info, [], {
    ctx: c.ctx,
    slots: c.slots,
    unified: c.unified ?? true,
    typeK: c.kv ?? 'f16',
    typeV: c.kv ?? 'f16',
    flashAttn: c.flashAttn,
    ngl: 0,
    nBatch: 2048,
    nUbatch: c.nUbatch ?? 512,
  });
  return { weights: est.host.weights, kv: est.host.kv, compute: est.host.compute, output: logitsBytes(info, c.slots) };
}

/** The planner's numbers for the case's GPU device (all layers and the output on it). */
export function predictGpu(info: ModelInfo, c: AccuracyCase & { gpu: NonNullable<AccuracyCase['gpu']> }): Components {
  const est = estimateMemory(info, [c.gpu.device], {
    ctx: c.ctx,
    slots: c.slots,
    unified: c.unified ?? true,
    typeK: c.kv ?? 'f16',
    typeV: c.kv ?? 'f16',
    flashAttn: c.flashAttn,
    ngl: info.layers + 1,
    nBatch: 2048,
    nUbatch: c.nUbatch ?? 512,
  });
  const [d] = est.devices;
  return { weights: d.weights, kv: d.kv, compute: d.compute };
}

/** The flags the planner would give llama-server for this case (CPU only, or all layers on the case's GPU). */
export function caseArgs(c: AccuracyCase, layers = 0): string[] {
  const plan = {
    ctx: c.ctx,
    slots: c.slots,
    unified: c.unified ?? true,
    gpuLayers: c.gpu ? layers + 1 : 0,
    devices: [],
    flashAttn: c.flashAttn,
    typeK: c.kv ?? 'f16',
    typeV: c.kv ?? 'f16',
    nBatch: 2048,
    nUbatch: c.nUbatch ?? 512,
    mmap: true,
    cacheRamMiB: 0,
  } as unknown as ModelPlan;
  const args = planArgs(plan).filter((a, i, all) => !(a === '--fit' || all[i - 1] === '--fit'));
  if (c.unified === false) args.push('--no-kv-unified');
  return args;
}

export async function measureCase(c: AccuracyCase): Promise<AccuracyResult> {
  let p = infoCache.get(c.model);
  if (!p) infoCache.set(c.model, (p = inspectModel(c.model)));
  const info = await p;
  const predicted = c.gpu ? predictGpu(info, { ...c, gpu: c.gpu }) : predictCpu(info, c);
  const actual = await askLlamaCpp(c, info.layers);
  return { c, predicted, actual, info };
}

async function askLlamaCpp(c: AccuracyCase, layers: number): Promise<Components> {
  const serverPath = c.gpu?.serverPath ?? (await getLlamaBinaries()).serverPath;
  const port = await pickFreePort();
  const args = [
    '-m',
    c.model,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--no-webui',
    '-t',
    '2',
    '--no-repack',
    '--no-warmup',
    '-lv',
    '4',
    ...caseArgs(c, layers),
    '--fit',
    c.mode === 'fit' ? 'on' : 'off',
  ];
  const proc = startProcess(serverPath, args, c.gpu ? { env: { ...process.env, ...c.gpu.env } } : {});
  const done = c.mode === 'fit' ? /common_memory_breakdown_print: \|\s+- Host/ : /sched_reserve: graph/;
  try {
    const deadline = Date.now() + 120_000;
    let exited = false;
    void proc.exited.then(() => {
      exited = true;
    });
    while (!done.test(proc.logText())) {
      if (exited) throw new Error(`llama-server exited before reporting memory:\n${tail(proc.logText())}`);
      if (Date.now() > deadline) throw new Error(`llama-server did not report memory within 120 s:\n${tail(proc.logText())}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await proc.stop(2000);
  }
  const log = parseLoadLog(proc.logText());
  if (c.mode === 'fit') {
    const rows = log.breakdown;
    const sum = (k: 'model' | 'context' | 'compute') => rows.reduce((s, r) => s + r[k], 0);
    return { weights: sum('model'), kv: sum('context'), compute: sum('compute') };
  }
  if (c.gpu) {
    const dev = new RegExp(`^${c.gpu.device.id}$`);
    return { weights: sumBuffers(log, 'model', dev), kv: sumBuffers(log, 'kv', dev), compute: sumBuffers(log, 'compute', dev) };
  }
  return {
    weights: sumBuffers(log, 'model', /^CPU/),
    kv: sumBuffers(log, 'kv', /^CPU/),
    compute: sumBuffers(log, 'compute', /^CPU/),
    output: sumBuffers(log, 'output', /^CPU/),
  };
}

/** Relative error of predicted vs actual; components under `floor` bytes compare in absolute terms. */
export function relError(pred: number, act: number, floor = 0): number {
  if (Math.abs(pred - act) <= floor) return 0;
  return act === 0 ? (pred === 0 ? 0 : 1) : (pred - act) / act;
}

const MiB = 1024 * 1024;

export function formatRow(r: AccuracyResult): string {
  const f = (n: number | undefined) => (n === undefined ? '—' : (n / MiB).toFixed(n < 100 * MiB ? 2 : 0));
  const e = (p?: number, a?: number) => (p === undefined || a === undefined ? '' : ` (${(relError(p, a) * 100).toFixed(1)}%)`);
  const parts = (['weights', 'kv', 'compute', 'output'] as const).map((k) => `${k} ${f(r.predicted[k])}/${f(r.actual[k])}${e(r.predicted[k], r.actual[k])}`);
  return `${r.c.label.padEnd(44)} ${parts.join('  ')}`;
}
