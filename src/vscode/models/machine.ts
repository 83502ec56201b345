import { PlannerMachine, machineFromProbe } from '../../core/models/planner/devices';
import { probeAccelerators } from '../../core/native';
import { inspectLlamaServer } from '../../daemon/installer';

// The machine as the planner sees it: the probe (amdgpu GTT, host RAM) merged with what the
// llama-server that will run reports (`--list-devices`). Probing takes a moment (a GPU runtime
// starts in a child process), so the answer is kept for a short while.

const TTL_MS = 20_000;
let cached: { key: string; at: number; machine: Promise<PlannerMachine> } | undefined;

export function plannerMachine(binaryPath: string | undefined, bandwidthGBps?: number): Promise<PlannerMachine> {
  const key = `${binaryPath ?? ''}|${bandwidthGBps ?? ''}`;
  if (cached && cached.key === key && Date.now() - cached.at < TTL_MS) return cached.machine;
  const machine = (async () => {
    const [probe, info] = await Promise.all([
      probeAccelerators(),
      binaryPath ? inspectLlamaServer(binaryPath).catch(() => undefined) : Promise.resolve(undefined),
    ]);
    return machineFromProbe(probe, { listed: info && !info.error ? info.devices : undefined, bandwidthGBps });
  })();
  cached = { key, at: Date.now(), machine };
  machine.catch(() => {
    cached = undefined;
  });
  return machine;
}

export function forgetMachine(): void {
  cached = undefined;
}
