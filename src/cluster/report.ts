import * as os from 'os';
import * as path from 'path';
import { readGgufHeader } from '../core/models/gguf/reader';
import { modelLayout } from './plan/layout';
import { planSplit, range, SplitDevice, SplitPlan } from './plan/split';
import { AgentInfo, DEFAULT_AGENT_PORT, TransportMode } from './protocol';
import { formatVersion, isCompatible, parseVersion, PINNED_RPC_VERSION } from './rpc/protocol';
import { AgentControlClient } from './transport/agentClient';

// What "Strata: Show Cluster" shows, without VS Code: every configured peer asked directly
// (reachable, latency, agent and RPC versions, devices and free memory) and, for the configured
// model, the split the sidecar would make (which layers where). Also what "Add Peer" uses to
// test a new peer before saving it.

export interface PeerEntry {
  name: string;
  host: string;
  port: number;
  transport: TransportMode;
  enabled?: boolean;
  /** Undefined: no token stored for it. */
  token?: string;
}

export interface PeerReport {
  peer: PeerEntry;
  reachable: boolean;
  /** One sentence when not reachable or not usable. */
  problem?: string;
  latencyMs?: number;
  info?: AgentInfo;
  /** "layers 0–26" when the plan gives it some. */
  layers?: string;
}

export interface ClusterReport {
  peers: PeerReport[];
  model?: string;
  plan?: SplitPlan;
  /** Why there is no plan (no model set, unreadable, ...). */
  planProblem?: string;
}

/** Connects, measures the round trip (best of 3), asks for devices (probing rpc-server when idle). */
export async function probePeer(peer: PeerEntry, opts: { timeoutMs?: number } = {}): Promise<PeerReport> {
  if (!peer.token) return { peer, reachable: false, problem: `No token stored for ${peer.name}: run "Strata: Add Peer" again for it.` };
  let c: AgentControlClient | undefined;
  try {
    c = await AgentControlClient.connect({ host: peer.host, port: peer.port, token: peer.token, label: peer.name }, { timeoutMs: opts.timeoutMs ?? 5000 });
    let latency = Infinity;
    for (let i = 0; i < 3; i++) latency = Math.min(latency, await c.ping());
    const info = await c.info(true);
    const r: PeerReport = { peer, reachable: true, latencyMs: latency, info };
    const v = info.rpc.version ? parseVersion(info.rpc.version) : undefined;
    if (v && !isCompatible(PINNED_RPC_VERSION, v)) {
      r.problem = `${peer.name} runs llama.cpp RPC protocol ${formatVersion(v)} but this Strata's llama.cpp speaks ${formatVersion(PINNED_RPC_VERSION)}: update llama.cpp so that both match.`;
    } else if (!info.devices.length) {
      r.problem = `${peer.name} offers no devices: ${info.rpc.error ?? 'rpc-server did not start'}.`;
    } else if (peer.transport === 'direct' && !info.agent.directAllowed) {
      r.problem = `${peer.name} is set to direct mode but its agent does not allow it (start it with --allow-direct --direct-host <address>), or switch the peer to the tunnel.`;
    }
    return r;
  } catch (e) {
    return { peer, reachable: false, problem: (e as Error).message };
  } finally {
    c?.close();
  }
}

export interface ReportOptions {
  modelPath?: string;
  ctx?: number;
  mode?: 'auto' | 'split';
  localDevices?: Array<{ id: string; label: string; freeBytes: number }>;
  hostFreeBytes?: number;
}

export async function collectClusterReport(peers: PeerEntry[], opts: ReportOptions = {}): Promise<ClusterReport> {
  const reports = await Promise.all(peers.map((p) => probePeer(p)));
  const out: ClusterReport = { peers: reports };
  if (!opts.modelPath) {
    out.planProblem = 'No model is set ("strata.model.path"), so there is no split to show.';
    return out;
  }
  out.model = path.basename(opts.modelPath);
  try {
    const header = await readGgufHeader(opts.modelPath, { maxArrayItems: 0 });
    const layout = modelLayout(header, { ctx: opts.ctx ?? 4096 });
    const devices: SplitDevice[] = [];
    for (const r of reports) {
      if (!r.reachable || r.problem || r.peer.enabled === false) continue;
      for (const d of r.info!.devices)
        devices.push({
          id: `${r.peer.name}#${d.index}`,
          host: r.peer.name,
          label: `${d.name}${d.description ? ` (${d.description})` : ''}`,
          freeBytes: d.freeBytes,
        });
    }
    for (const d of opts.localDevices ?? []) devices.push({ ...d, host: 'local' });
    const plan = planSplit({ layout, devices, mode: opts.mode ?? 'auto', hostFreeBytes: opts.hostFreeBytes ?? os.freemem() });
    out.plan = plan;
    for (const s of plan.shares) {
      const r = reports.find((x) => x.peer.name === s.device.host);
      if (r) r.layers = [r.layers, range(s.from, s.to, plan.nLayer)].filter(Boolean).join(', ');
    }
  } catch (e) {
    out.planProblem = `Could not read ${out.model}: ${(e as Error).message}`;
  }
  return out;
}

const GiB = 1024 ** 3;

/** Plain-text lines for a log or a document. */
export function formatClusterReport(r: ClusterReport): string[] {
  const lines: string[] = [];
  for (const p of r.peers) {
    const head = `${p.peer.name} (${p.peer.host}:${p.peer.port}, ${p.peer.transport}${p.peer.enabled === false ? ', disabled' : ''})`;
    if (!p.reachable) {
      lines.push(`✗ ${head}: ${p.problem}`);
      continue;
    }
    const i = p.info!;
    lines.push(
      `${p.problem ? '!' : '✓'} ${head}: ${p.latencyMs!.toFixed(2)} ms, agent ${i.agent.version} on ${i.agent.hostname}, RPC ${i.rpc.version ?? '?'}${p.layers ? `, would hold ${p.layers}` : ''}`,
    );
    for (const d of i.devices)
      lines.push(`    ${d.name}${d.description ? ` ${d.description}` : ''}: ${(d.freeBytes / GiB).toFixed(1)} of ${(d.totalBytes / GiB).toFixed(1)} GiB free`);
    if (p.problem) lines.push(`    ${p.problem}`);
  }
  if (r.plan) {
    lines.push(`${r.model}: ${r.plan.summary}`);
    for (const l of r.plan.lines) lines.push(`    ${l}`);
  } else if (r.planProblem) {
    lines.push(r.planProblem);
  }
  return lines;
}

/** "host", "host:port", "[v6]:port"; the agent's default port when none is given. */
export function parseHostPort(v: string): { host: string; port: number } | undefined {
  const m = /^\s*(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?\s*$/.exec(v);
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : DEFAULT_AGENT_PORT;
  return port > 0 && port < 65536 ? { host: m[1] ?? m[2], port } : undefined;
}
