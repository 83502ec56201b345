import * as path from 'path';
import * as vscode from 'vscode';
import { gib, Role } from '../../core/models/planner/plan';
import { speedLabel } from '../../core/models/planner/speed';
import { loadCatalog, PlannedRow, planRows, rowText, sortRows } from '../../core/models/switcher';
import type { SidecarController } from '../serverControl/controller';
import { loadPercentReporter } from '../serverControl/loadProgress';
import { ACTIONS, tooBigStep } from '../walkthrough/nextSteps';
import { strataSettings } from '../workspaceTrust';
import { downloadEntry } from './downloadUi';
import { forgetMachine, plannerMachine } from './machine';
import { PlannerState } from './planProvider';
import { readModelsConfig } from './settings';

// "Strata: Switch Model": every model Strata knows (presets, files on disk, custom entries),
// grouped by role, each with its size, quant, the context it gets on this machine, the expected
// speed and whether it is on disk. Only what fits is listed at first, files already on disk
// first; one more row shows the rest. Picking one downloads it if need be (progress, cancel,
// resume), points `strata.model.path` at it (every window follows the setting and the sidecar's
// status) and waits for the load; a load that fails puts the previous model back.

interface RowItem extends vscode.QuickPickItem {
  row?: PlannedRow;
  /** The row that lists the models that do not fit. */
  showAll?: true;
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
  for (;;) {
    const row = await pickRow(deps);
    if (!row) return;
    if ((await applyChoice(row, deps)) !== 'pick-another') return;
  }
}

async function pickRow(deps: SwitchDeps): Promise<PlannedRow | undefined> {
  const qp = vscode.window.createQuickPick<RowItem>();
  qp.title = 'Strata: Switch Model';
  qp.placeholder = 'Planning every model against this machine…';
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.busy = true;
  qp.show();
  const cfg = readModelsConfig();
  let all: RowItem[] = [];
  try {
    forgetMachine();
    const [entries, machine] = await Promise.all([loadCatalog(cfg), plannerMachine(deps.controller.currentPlan?.binaryPath, cfg.bandwidthGBps)]);
    const current = strataSettings('strata').get<string>('model.path', '');
    const draft = strataSettings('strata.models').get<string>('draft', '');
    let hidden = 0;
    const fitting: RowItem[] = [];
    for (const g of GROUPS) {
      const members = entries.filter((e) => e.roles.includes(g.role));
      if (!members.length) continue;
      const rows = sortRows(await planRows(members, machine, cfg, g.role));
      const items = rows.map((r): RowItem => {
        const t = rowText(r);
        const active = r.entry.path && (r.entry.path === current || r.entry.path === draft);
        return { label: `${active ? '$(circle-filled) ' : ''}${t.label}`, description: t.description, detail: t.detail, row: r };
      });
      const fits = items.filter((i) => i.row!.plan?.verdict !== 'does-not-fit');
      hidden += items.length - fits.length;
      const sep = { label: g.title, kind: vscode.QuickPickItemKind.Separator };
      all.push(sep, ...items);
      if (fits.length) fitting.push(sep, ...fits);
    }
    const where = machine.devices.length
      ? machine.devices.map((d) => `${d.name} (${gib(d.budgetBytes)} usable)`).join(', ')
      : `the CPU (${gib(machine.host.availableBytes)} RAM free)`;
    const more: RowItem[] = hidden
      ? [
          { label: '', kind: vscode.QuickPickItemKind.Separator },
          { label: `$(eye) Show ${hidden} more that do not fit this machine`, showAll: true, alwaysShow: true },
        ]
      : [];
    qp.items = fitting.length ? [...fitting, ...more] : all;
    qp.placeholder = fitting.length ? `Models that fit ${where}; those on disk first` : `Nothing fits ${where}: each row says what would make it fit`;
    qp.busy = false;
  } catch (e) {
    qp.hide();
    qp.dispose();
    void vscode.window.showErrorMessage(`Strata could not list models: ${(e as Error).message}`);
    return undefined;
  }
  const picked = await new Promise<RowItem | undefined>((resolve) => {
    qp.onDidAccept(() => {
      const item = qp.selectedItems[0];
      if (item?.showAll) {
        qp.items = all;
        qp.placeholder = 'Every model; those that do not fit say what would make them fit';
        return;
      }
      resolve(item);
    });
    qp.onDidHide(() => resolve(undefined));
  });
  qp.hide();
  qp.dispose();
  all = [];
  return picked?.row;
}

/** 'pick-another' when the user asked to choose again. */
async function applyChoice(row: PlannedRow, deps: SwitchDeps): Promise<'done' | 'pick-another'> {
  const { entry, plan } = row;
  if (plan?.verdict === 'does-not-fit') {
    // The plan provider refuses such a model too: loading it would only end in an out-of-memory crash.
    const step = tooBigStep(plan);
    const choice = await vscode.window.showWarningMessage(`Strata: ${step.text}`, ...step.actions);
    const fix = plan.fixes.find((f) => f.kind === 'kernel-gtt');
    if (choice === ACTIONS.copyKernel && fix?.value) {
      await vscode.env.clipboard.writeText(fix.value);
      void vscode.window.showInformationMessage(`Strata: copied "${fix.value}": ${fix.text}.`);
    } else if (choice === ACTIONS.addPeer) {
      await vscode.commands.executeCommand('strata.cluster.addPeer');
    } else if (choice === ACTIONS.pickAnother) {
      return 'pick-another';
    }
    return 'done';
  }
  let file = entry.path;
  if (!entry.downloaded) {
    const got = await downloadEntry(entry, deps.log);
    if ('stopped' in got) return got.stopped === 'pick-another' ? 'pick-another' : 'done';
    file = got.path;
  }
  if (!file) return 'done';
  const settingKey = row.role === 'draft' ? 'models.draft' : 'model.path';
  const cfg = strataSettings('strata');
  const previous = cfg.get<string>(settingKey, '');
  if (previous === file && row.role !== 'draft') {
    await deps.controller.startServer({ switchModel: true });
    return 'done';
  }
  if (plan) deps.log.info(`switch model: ${plan.summary} Expected ${speedLabel(plan.speed)}.`);
  await cfg.update(settingKey, file, vscode.ConfigurationTarget.Global);
  const ok = await waitForLoad(deps, file, path.basename(file));
  if (ok === 'ready' || ok === 'cancelled') return 'done';
  // Roll back: the previous model is what worked.
  deps.log.warn(`switching to ${path.basename(file)} failed (${ok}); going back to ${previous ? path.basename(previous) : 'no model'}`);
  await cfg.update(settingKey, previous || undefined, vscode.ConfigurationTarget.Global);
  const pick = await vscode.window.showErrorMessage(
    `Strata: ${path.basename(file)} could not be loaded (${ok}); switched back to ${previous ? path.basename(previous) : 'no model'}.`,
    ACTIONS.pickAnother,
    'Show Logs',
  );
  if (pick === 'Show Logs') await vscode.commands.executeCommand('strata.server.showLogs');
  return pick === ACTIONS.pickAnother ? 'pick-another' : 'done';
}

/** Follows the sidecar while the controller loads the new setting; 'ready', 'cancelled', or why it failed. */
function waitForLoad(deps: SwitchDeps, file: string, label: string): Thenable<string> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Strata: switching to ${label}`, cancellable: true },
    (progress, token) =>
      new Promise<string>((resolve) => {
        const t0 = Date.now();
        const client = deps.controller.sidecarClient;
        const onProgress = loadPercentReporter(progress);
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
      }),
  );
}
