import { strataCacheDir } from '../../core/paths';
import { ServerPlan, SidecarStatus } from '../../core/protocol';
import { listInstalledBuilds } from '../../daemon/installer';
import { LlamaServerInfo } from '../../daemon/installer';
import type { SidecarReport } from '../serverStatus';
import { ResolvedBinary } from './plan';
import { Problem } from './statusView';

// "Show Server Status"'s sidecar part: the daemon's view, this window's plan and problem, and the
// llama-server it would run with what that binary reports, as one plain object (the command
// prints it and returns it to tests). No `vscode` import.

export interface ReportInput {
  status?: SidecarStatus;
  plan?: ServerPlan;
  binary?: ResolvedBinary;
  binaryInfo?: LlamaServerInfo;
  problem?: Problem;
  lastError?: string;
  tokPerSec?: number;
}

export function sidecarReport(i: ReportInput): SidecarReport {
  const s = i.status;
  const sv = s?.server;
  const info = i.binaryInfo;
  const r: SidecarReport = {
    phase: sv?.phase ?? 'no-sidecar',
    ...(s ? { daemonPid: s.daemon.pid, clients: s.daemon.clients, daemonLog: s.daemon.logFile, serverLog: s.daemon.serverLogFile } : {}),
    ...(sv?.pid ? { serverPid: sv.pid } : {}),
    ...(sv?.label ? { label: sv.label } : i.plan?.label ? { label: i.plan.label } : {}),
    ...(sv?.progress !== undefined && sv.phase === 'loading' ? { progress: sv.progress } : {}),
    ...(i.plan ? { wanted: { modelPath: i.plan.modelPath, binaryPath: i.plan.binaryPath, args: i.plan.args } } : {}),
    ...(sv?.error ? { error: sv.error.message, logTail: sv.error.logTail } : i.lastError ? { error: i.lastError } : {}),
    ...(i.problem ? { problem: i.problem } : {}),
    ...(i.tokPerSec ? { tokPerSec: i.tokPerSec } : {}),
  };
  if (i.binary) {
    r.binary = {
      path: i.binary.path,
      kind: i.binary.kind,
      backends: info?.backends ?? [],
      devices: info?.devices ?? [],
      ...(info?.version ? { version: info.version } : {}),
      ...(info?.commit ? { commit: info.commit } : {}),
      ...(info?.builtWith ? { builtWith: info.builtWith } : {}),
      ...(info?.error ? { error: info.error } : {}),
    };
  }
  r.installedBuilds = listInstalledBuilds(strataCacheDir()).map((b) => ({ id: b.id, backend: b.backend, source: b.source, hasBench: !!b.benchPath }));
  return r;
}
