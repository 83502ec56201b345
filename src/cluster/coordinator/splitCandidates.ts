// Which peers can take layers of a load, and the devices the split is planned over: a peer must be
// up, speak a llama.cpp RPC protocol this llama-server can use, and have rpc-server devices. Each
// peer left out comes with the reason in words, for the events and the "does not fit" sentence.

import type { ClusterConfig } from '../../core/protocol';
import { SplitDevice } from '../plan/split';
import { formatVersion, isCompatible, parseVersion, RpcVersion } from '../rpc/protocol';
import { PeerLink } from './peerLink';

/** The candidates in the order given; a peer that is up but lists no devices yet is asked to probe its rpc-server first. */
export async function splitCandidates(usable: PeerLink[], expect: RpcVersion): Promise<{ candidates: PeerLink[]; notes: string[] }> {
  const notes: string[] = [];
  const candidates: PeerLink[] = [];
  for (const l of usable) {
    if (l.phase !== 'up') {
      notes.push(
        l.phase === 'incompatible' && l.reason
          ? l.reason
          : `peer ${l.cfg.name} is ${l.phase === 'auth-failed' ? 'refusing the token' : 'unreachable'} (${l.reason ?? l.phase})`,
      );
      continue;
    }
    if (!l.info?.devices.length) await l.refresh(true);
    const v = l.info?.rpc.version ? parseVersion(l.info.rpc.version) : undefined;
    if (v && !isCompatible(expect, v)) {
      notes.push(
        `peer ${l.cfg.name} runs llama.cpp RPC protocol ${formatVersion(v)} but this llama-server speaks ${formatVersion(expect)}; update llama.cpp so that both match`,
      );
      continue;
    }
    if (!l.info?.devices.length) {
      notes.push(`peer ${l.cfg.name} has no rpc-server devices (${l.info?.rpc.error ?? 'rpc-server did not start'})`);
      continue;
    }
    candidates.push(l);
  }
  return { candidates, notes };
}

/** The candidates' devices (as llama-server names them, RPC[peer]#index), then this machine's. */
export function splitDevices(candidates: PeerLink[], local: NonNullable<ClusterConfig['localDevices']>): SplitDevice[] {
  const devices: SplitDevice[] = [];
  for (const l of candidates) {
    for (const d of l.info!.devices)
      devices.push({
        id: `RPC[${l.cfg.name}]#${d.index}`,
        host: l.cfg.name,
        label: `${d.name}${d.description ? ` (${d.description})` : ''}`,
        freeBytes: d.freeBytes,
      });
  }
  for (const d of local) devices.push({ ...d, host: 'local' });
  return devices;
}
