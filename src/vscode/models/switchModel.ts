import * as path from 'path';
import * as vscode from 'vscode';
import { CatalogEntry } from '../../core/models/catalog/catalog';
import { DownloadError } from '../../core/models/download/downloadFile';
import { downloadModel } from '../../core/models/download/downloadModel';
import { hubEndpoint } from '../../core/models/download/hub';
import { gib, Role } from '../../core/models/planner/plan';
import { speedLabel } from '../../core/models/planner/speed';
import { loadCatalog, PlannedRow, planRows, rowText } from '../../core/models/switcher';
import type { SidecarController } from '../sidecar/controller';
import { forgetMachine, plannerMachine } from './machine';
import { PlannerState } from './planProvider';
import { readModelsConfig } from './settings';
import { strataSettings } from '../workspaceTrust';

// "Strata: Switch Model": every model Strata knows (presets, files on disk, custom entries),
// grouped by role, each with its size, quant, whether it fits this machine (and at what
// context), the expected speed and whether it is downloaded. Picking one downloads it if need
// be (progress, cancel), points `strata.model.path` at it (every window follows the setting and
// the sidecar's status) and waits for the load; a load that fails puts the previous model back.

interface RowItem extends vscode.QuickPickItem {
  row?: PlannedRow;
}

const GROUPS: Array<{ role: Role; title: string }> = [
  { role: 'both', title: 'Completions and chat (one model serves both)' },
  { role: 'fim', title: 'Inline completions (FIM)' },
  { role: 'chat', title: 'Chat' },
  { role: 'draft', title: 'Draft model for speculative decoding' },
];

export interface SwitchDeps {
  controller: SidecarController;
  log: vscode.LogOutputChannel;
  planner: PlannerState;
}

export async function switchModelCommand(deps: SwitchDeps): Promise<void> {
  const qp = vscode.window.createQuickPick<RowItem>();
  qp.title = 'Strata: Switch Model';
  qp.placeholder = 'Planning every model against this machine…';
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.busy = true;
  qp.show();
  const cfg = readModelsConfig();
  try {
    forgetMachine();
    const [entries, machine] = await Promise.all([loadCatalog(cfg), plannerMachine(deps.controller.currentPlan?.binaryPath, cfg.bandwidthGBps)]);
    const items: RowItem[] = [];
    const current = strataSettings('strata').get<string>('model.path', '');
    const draft = strataSettings('strata.models').get<string>('draft', '');
    for (const g of GROUPS) {
      const members = entries.filter((e) => e.roles.includes(g.role));
      if (!members.length) continue;
      const rows = await planRows(members, machine, cfg, g.role);
      items.push({ label: g.title, kind: vscode.QuickPickItemKind.Separator });
      for (const r of sortRows(rows)) {
        const t = rowText(r);
        const active = r.entry.path && (r.entry.path === current || r.entry.path === draft);
        items.push({ label: `${active ? '$(circle-filled) ' : ''}${t.label}`, description: t.description, detail: t.detail, row: r });
      }
    }
    const where = machine.devices.length ? machine.devices.map((d) => `${d.name} (${gib(d.budgetBytes)} usable)`).join(', ') : `CPU (${gib(machine.host.availableBytes)} RAM free)`;
    qp.items = items;
    qp.placeholder = `Pick a model for ${where}`;
    qp.busy = false;
  } catch (e) {
    qp.hide();
    void vscode.window.showErrorMessage(`Strata could not list models: ${(e as Error).message}`);
    return;
  }
  const picked = await new Promise<RowItem | undefined>((resolve) => {
    qp.onDidAccept(() => resolve(qp.selectedItems[0]));
    qp.onDidHide(() => resolve(undefined));
  });
  qp.hide();
  qp.dispose();
  if (!picked?.row) return;
  await applyChoice(picked.row, deps);
}

function sortRows(rows: PlannedRow[]): PlannedRow[] {
  const rank = (r: PlannedRow) => (r.plan?.verdict === 'fits' ? 0 : r.plan?.verdict === 'fits-smaller-context' ? 1 : r.plan ? 3 : 2);
  return [...rows].sort((a, b) => rank(a) - rank(b) || Number(b.entry.downloaded) - Number(a.entry.downloaded) || a.entry.sizeBytes - b.entry.sizeBytes);
}

async function applyChoice(row: PlannedRow, deps: SwitchDeps): Promise<void> {
  const { entry, plan } = row;
  if (plan?.verdict === 'does-not-fit') {
    // The plan provider refuses such a model too: loading it would only end in an out-of-memory crash.
    const fix = plan.fixes[0];
    const choice = await vscode.window.showWarningMessage(`Strata: ${plan.summary}`, ...(fix?.kind === 'kernel-gtt' ? ['Copy Kernel Parameters'] : []));
    if (choice === 'Copy Kernel Parameters' && fix?.value) await vscode.env.clipboard.writeText(fix.value);
    return;
  }
  let file = entry.path;
  if (!entry.downloaded) {
    file = await download(entry, deps.log);
    if (!file) return;
  }
  if (!file) return;
  const settingKey = row.role === 'draft' ? 'models.draft' : 'model.path';
  const cfg = strataSettings('strata');
  const previous = cfg.get<string>(settingKey, '');
  if (previous === file && row.role !== 'draft') {
    await deps.controller.startServer({ switchModel: true });
    return;
  }
  if (plan) deps.log.info(`switch model: ${plan.summary} Expected ${speedLabel(plan.speed)}.`);
  await cfg.update(settingKey, file, vscode.ConfigurationTarget.Global);
  const ok = await waitForLoad(deps, file, path.basename(file));
  if (ok === 'ready' || ok === 'cancelled') return;
  // Roll back: the previous model is what worked.
  deps.log.warn(`switching to ${path.basename(file)} failed (${ok}); going back to ${previous ? path.basename(previous) : 'no model'}`);
  await cfg.update(settingKey, previous || undefined, vscode.ConfigurationTarget.Global);
  void vscode.window.showErrorMessage(`Strata: ${path.basename(file)} could not be loaded (${ok}); switched back to ${previous ? path.basename(previous) : 'no model'}.`);
}

/** Follows the sidecar while the controller loads the new setting; 'ready', 'cancelled', or why it failed. */
function waitForLoad(deps: SwitchDeps, file: string, label: string): Thenable<string> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Strata: switching to ${label}`, cancellable: true }, (progress, token) =>
    new Promise<string>((resolve) => {
      const t0 = Date.now();
      let last = 0;
      const client = deps.controller.sidecarClient;
      const onProgress = (p: { kind: string; fraction?: number; stage?: string }) => {
        if (p.kind !== 'load' || p.fraction === undefined) return;
        const pct = Math.floor(p.fraction * 100);
        progress.report({ message: `${pct}%${p.stage ? ` (${p.stage})` : ''}`, increment: Math.max(0, pct - last) });
        last = Math.max(last, pct);
      };
      client?.on('progress', onProgress);
      const done = (r: string) => {
        clearInterval(timer);
        sub.dispose();
        cancel.dispose();
        client?.off('progress', onProgress);
        resolve(r);
      };
      const check = () => {
        if (deps.planner.modelPath === file && deps.planner.error) return done(deps.planner.error);
        const sv = deps.controller.status?.server;
        if (sv?.plan?.modelPath !== file) {
          // The plan may still be made; give up only when nothing happens for a long time.
          if (Date.now() - t0 > 60_000) done('the sidecar did not start loading it');
          return;
        }
        if (sv.phase === 'ready') done('ready');
        else if (sv.phase === 'failed') done(sv.error?.message ?? 'llama-server failed to load it');
      };
      const sub = deps.controller.onDidChange(check);
      const timer = setInterval(check, 250);
      const cancel = token.onCancellationRequested(() => {
        void deps.controller.stopServer();
        done('cancelled');
      });
    }));
}

async function download(entry: CatalogEntry, log: vscode.LogOutputChannel): Promise<string | undefined> {
  if (!entry.repo || !entry.files?.length) {
    void vscode.window.showErrorMessage(`Strata: ${entry.label} has no download source; add it under "strata.models.custom" with its repo and file.`);
    return undefined;
  }
  const cfg = readModelsConfig();
  const size = entry.sizeBytes ? ` (${(entry.sizeBytes / 1e9).toFixed(1)} GB)` : '';
  const go = await vscode.window.showInformationMessage(`Download ${entry.label} ${entry.quant}${size} from ${entry.repo}${entry.licence ? ` (licence: ${entry.licence})` : ''}?`, 'Download');
  if (go !== 'Download') return undefined;
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Strata: downloading ${entry.label} ${entry.quant}`, cancellable: true }, async (progress, token) => {
    const ac = new AbortController();
    token.onCancellationRequested(() => ac.abort());
    let last = 0;
    try {
      const r = await downloadModel({
        endpoint: hubEndpoint(cfg.hubEndpoint),
        repo: entry.repo!,
        files: entry.files!,
        downloadDir: cfg.downloadDir,
        sha256: entry.sha256,
        token: process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined,
        signal: ac.signal,
        onProgress: (p) => {
          const pct = p.total ? Math.floor((p.bytes / p.total) * 100) : 0;
          const what = p.phase === 'hashing' ? 'checking the part already downloaded' : p.phase === 'verifying' ? 'verifying SHA-256' : `${(p.bytes / 1e9).toFixed(1)} of ${(p.total / 1e9).toFixed(1)} GB`;
          progress.report({ message: `${p.count > 1 ? `part ${p.index + 1}/${p.count}: ` : ''}${what}`, increment: Math.max(0, pct - last) });
          last = Math.max(last, pct);
        },
      });
      log.info(`downloaded ${entry.repo}/${entry.files!.join(', ')}: ${r.parts.map((p) => `${p.sha256.slice(0, 12)}… ${p.verification}`).join(', ')}`);
      return r.path;
    } catch (e) {
      const msg = e instanceof DownloadError ? e.message : `The download failed: ${(e as Error).message}`;
      log.warn(msg);
      if (!(e instanceof DownloadError && e.code === 'cancelled')) void vscode.window.showErrorMessage(`Strata: ${msg}`);
      return undefined;
    }
  });
}
