import type { ModelPlan } from '../../core/models/planner/plan';

// Every dead end of the first run, as one sentence and the buttons that get past it. Pure (no
// `vscode`): the callers show it and carry out the button that was clicked, and unit tests read
// the words. Button titles are the contract between the two.

export interface NextStep {
  text: string;
  actions: string[];
}

export const ACTIONS = {
  pickModel: 'Pick a Model',
  pickAnother: 'Pick Another Model',
  checkAgain: 'Check Again',
  build: 'Build for This Machine',
  download: 'Download llama-server',
  chooseServer: 'Choose llama-server…',
  copyKernel: 'Copy Kernel Parameters',
  addPeer: 'Add Peer',
  chooseFolder: 'Choose Download Folder…',
  resume: 'Resume Download',
  retry: 'Retry',
} as const;

/** No accelerator: models run on the CPU, which is fine for small ones; a missing driver is the usual cause. */
export function noGpuStep(): NextStep {
  return {
    text: "Strata found no GPU, so models run on the CPU, where small ones (up to about 7B) answer at a usable speed. If this machine has a GPU, install its driver (NVIDIA: the CUDA driver; AMD: ROCm or Mesa's Vulkan driver; Intel: Mesa's Vulkan driver) and check again.",
    actions: [ACTIONS.checkAgain, ACTIONS.pickModel],
  };
}

/** The release server cannot be reached: building needs no download once the llama.cpp source is cached. */
export function offlineStep(url: string, detail?: string): NextStep {
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    /* keep the text */
  }
  return {
    text: `Strata could not reach ${host} to download llama-server${detail ? ` (${detail})` : ''}; build it for this machine from the llama.cpp source instead, or choose a llama-server you already have.`,
    actions: [ACTIONS.build, ACTIONS.chooseServer],
  };
}

/** No llama-server anywhere Strata looks. */
export function noServerStep(): NextStep {
  return {
    text: 'Strata found no llama-server (not in its own installs, on PATH or in the usual places): download the official build for this machine, build one for its GPU, or choose one you already have.',
    actions: [ACTIONS.download, ACTIONS.build, ACTIONS.chooseServer],
  };
}

/** The planner's refusal, with a button for each fix it found and always another model. */
export function tooBigStep(plan: Pick<ModelPlan, 'summary' | 'fixes'>): NextStep {
  const actions: string[] = [];
  for (const f of plan.fixes) {
    if (f.kind === 'kernel-gtt' && f.value) actions.push(ACTIONS.copyKernel);
    if (f.kind === 'add-peer') actions.push(ACTIONS.addPeer);
  }
  actions.push(ACTIONS.pickAnother);
  return { text: plan.summary, actions: [...new Set(actions)] };
}

function gb(n: number): string {
  return n < 1e9 ? `${Math.max(1, Math.round(n / 1e6))} MB` : `${(n / 1e9).toFixed(n >= 10e9 ? 0 : 1)} GB`;
}

/** Not enough room (before the first byte or mid-way): the downloader's sentence says how much. */
export function diskFullStep(message: string): NextStep {
  return { text: message, actions: [ACTIONS.chooseFolder, ACTIONS.pickAnother] };
}

/** Cancelled half way: the part stays, and the same pick resumes it. */
export function cancelledStep(label: string, bytes: number, total: number): NextStep {
  const where = total > 0 && bytes > 0 ? ` at ${gb(bytes)} of ${gb(total)}` : '';
  return {
    text: `The download of ${label} stopped${where}; what arrived is kept, and downloading it again resumes from there.`,
    actions: [ACTIONS.resume],
  };
}

/** The network dropped mid-way: the same, with Retry. */
export function interruptedStep(message: string): NextStep {
  return { text: message, actions: [ACTIONS.retry, ACTIONS.pickAnother] };
}
