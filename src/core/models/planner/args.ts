// A plan as llama-server flags, in the dialect of the binary that will run it. The supervisor
// adds -m, --host, --port, --api-key-file and --metrics itself. Everything the planner decided is
// spelled out, and --fit is turned off: llama.cpp would otherwise re-measure (seconds for a 70B
// model) and may change what the planner chose.

import type { ModelPlan } from './plan';
import { CURRENT_FLAGS, ServerFlags } from './serverFlags';

export function planArgs(plan: ModelPlan, flags: ServerFlags = CURRENT_FLAGS): string[] {
  const a: string[] = ['-c', String(plan.ctx), '-np', String(plan.slots)];
  if (plan.unified && plan.slots > 1 && flags.kvUnified) a.push('--kv-unified');
  a.push('-ngl', String(plan.gpuLayers));
  if (plan.devices.length > 1) {
    // The split the planner sized each device for (llama.cpp's own default follows free memory, which may have moved).
    const total = plan.devices.reduce((s, d) => s + d.weights, 0) || 1;
    a.push('-ts', plan.devices.map((d) => Math.round((d.weights / total) * 100)).join(','));
  }
  if (flags.flashAttnValue) a.push('-fa', plan.flashAttn ? 'on' : 'off');
  else if (plan.flashAttn) a.push('-fa');
  if (plan.typeK !== 'f16') a.push('-ctk', plan.typeK);
  if (plan.typeV !== 'f16') a.push('-ctv', plan.typeV);
  if (plan.nBatch !== 2048) a.push('-b', String(plan.nBatch));
  if (plan.nUbatch !== 512) a.push('-ub', String(plan.nUbatch));
  if (!plan.mmap) {
    if (flags.loadMode) a.push('--load-mode', 'none');
    else if (flags.noMmap) a.push('--no-mmap');
  }
  if (flags.cacheRam) a.push('--cache-ram', String(plan.cacheRamMiB));
  if (flags.fit) a.push('--fit', 'off');
  return a;
}
