import * as vscode from 'vscode';
import type { ClusterStatus } from '../../core/protocol';
import type { SidecarClient } from '../../core/daemonClient';
import type { SidecarController } from '../serverControl/controller';
import { plannerMachine } from '../models/machine';
import type { ClusterSidecarSeam } from './index';

// The cluster commands' way to the daemon, which runs the cluster (tunnels, split, failover,
// placed servers). Peers are pushed with their tokens over the authenticated control socket;
// the daemon keeps them in memory only.

/** This machine's accelerators as llama.cpp will number them, from the planner's view of the machine. */
export async function localDevicesFor(binaryPath: string | undefined): Promise<Array<{ id: string; label: string; freeBytes: number }> | undefined> {
  if (!binaryPath) return undefined;
  const m = await plannerMachine(binaryPath).catch(() => undefined);
  return m?.devices.map((d) => ({ id: d.id, label: d.name, freeBytes: d.budgetBytes }));
}

export function createClusterSeam(controller: SidecarController): ClusterSidecarSeam {
  /** The daemon is started for peers only when there is something for it to do with them. */
  const client = async (start: boolean) => {
    const c = await controller.connect(start);
    if (!c) throw new Error('The Strata sidecar is not running: it starts with the first model load.');
    return c;
  };
  return {
    async configure(cfg) {
      const wanted = cfg.peers.length > 0 || (cfg.placements?.length ?? 0) > 0;
      if (!wanted && !controller.sidecarClient) return emptyStatus(cfg.mode);
      const localDevices = await localDevicesFor(controller.currentPlan?.binaryPath);
      const c = await client(wanted);
      return c.request('cluster.configure', { ...cfg, ...(localDevices ? { localDevices } : {}) });
    },
    status: async () => (await client(false)).request('cluster.status', { refresh: true }, { timeoutMs: 20_000 }),
    useReturnedPeers: async () => (await client(false)).request('cluster.useReturned', {}, { timeoutMs: 0 }),
    onEvent(fn) {
      // The controller may connect later (or to a new daemon): follow whichever client it has.
      let wired: SidecarClient | undefined;
      const wire = () => {
        const c = controller.sidecarClient;
        if (!c || c === wired) return;
        wired?.off('cluster', fn);
        c.on('cluster', fn);
        wired = c;
      };
      wire();
      const sub = controller.onDidConnect(wire);
      return new vscode.Disposable(() => {
        sub.dispose();
        wired?.off('cluster', fn);
      });
    },
    onConnected: (fn) => controller.onDidConnect(() => fn()),
  };
}

function emptyStatus(mode: ClusterStatus['mode']): ClusterStatus {
  return { mode, peers: [], placements: [], events: [] };
}
