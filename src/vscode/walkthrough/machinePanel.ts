import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { summarizeMachine } from '../../core/models/machineSummary';
import { loadNative, probeAccelerators } from '../../core/native';
import { describeDevices, inspectLlamaServer } from '../../daemon/installer';
import { forgetMachine, plannerMachine } from '../models/machine';
import { readModelsConfig } from '../models/settings';
import type { SidecarController } from '../serverControl/controller';
import { chooseServerBinary } from './choosers';
import { escapeHtml, MachinePage, renderMachineHtml, ServerFacts } from './machineHtml';
import { ACTIONS } from './nextSteps';

// The "Your machine" page of the walkthrough: a webview panel beside it with what the probe
// found (summarizeMachine), the llama-server Strata would run, and buttons for the next steps.
// One panel per window, re-used and re-checked by "Check My Machine" / "Check Again".

export interface MachinePanelDeps {
  controller: SidecarController;
  log: vscode.LogOutputChannel;
  extensionPath: string;
}

let current: { panel: vscode.WebviewPanel; refresh(): Promise<MachinePage | undefined> } | undefined;

/** Opens (or reveals and re-checks) the panel; resolves with what it shows. */
export async function showMachinePanel(deps: MachinePanelDeps): Promise<MachinePage | undefined> {
  if (current) {
    current.panel.reveal(vscode.ViewColumn.Beside, false);
    return current.refresh();
  }
  const panel = vscode.window.createWebviewPanel(
    'strata.machine',
    'Your Machine',
    { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false },
    {
      enableScripts: true,
      enableCommandUris: false,
      enableForms: false,
      localResourceRoots: [],
    },
  );
  panel.iconPath = vscode.Uri.file(path.join(deps.extensionPath, 'media', 'strata.svg'));
  let last: MachinePage | undefined;
  const refresh = async (): Promise<MachinePage | undefined> => {
    const nonce = crypto.randomBytes(18).toString('base64');
    panel.webview.html = checkingHtml(nonce);
    try {
      last = await machinePage(deps);
      panel.webview.html = renderMachineHtml(last, { nonce, cspSource: panel.webview.cspSource });
      deps.log.info(
        `your machine: ${last.summary.gpus.map((g) => g.name).join(', ') || 'no GPU'}; runs ${last.summary.capacity.headline}${last.summary.heldBack.length ? `; held back: ${last.summary.heldBack.map((h) => h.kind).join(', ')}` : ''}`,
      );
      return last;
    } catch (e) {
      deps.log.error(`checking this machine failed: ${(e as Error).stack ?? e}`);
      panel.webview.html = checkingHtml(
        nonce,
        `Strata could not check this machine (${(e as Error).message}); see the Strata log, then run "Strata: Check My Machine" again.`,
      );
      return undefined;
    }
  };
  const sub = panel.webview.onDidReceiveMessage(async (m: unknown) => {
    const msg = m as { type?: unknown; action?: unknown; value?: unknown };
    if (msg?.type !== 'action' || typeof msg.action !== 'string') return;
    const value = typeof msg.value === 'string' ? msg.value : undefined;
    if (msg.action === ACTIONS.checkAgain) {
      forgetMachine();
      await refresh();
      return;
    }
    // Only the kernel parameters this page shows are copied, whatever the page sends.
    if (msg.action === ACTIONS.copyKernel) {
      const allowed = last?.summary.heldBack.some((h) => h.copy === value);
      if (!allowed || !value) return;
      await vscode.env.clipboard.writeText(value);
      void vscode.window.showInformationMessage(
        `Strata: copied "${value}". Add it to GRUB_CMDLINE_LINUX in /etc/default/grub, run "sudo update-grub" and reboot; then press Check Again.`,
      );
      return;
    }
    const run: Record<string, () => Thenable<unknown>> = {
      [ACTIONS.pickModel]: () => vscode.commands.executeCommand('strata.models.switch'),
      [ACTIONS.build]: () => vscode.commands.executeCommand('strata.server.build'),
      [ACTIONS.download]: () => vscode.commands.executeCommand('strata.server.download'),
      [ACTIONS.chooseServer]: () => chooseServerBinary(),
      [ACTIONS.addPeer]: () => vscode.commands.executeCommand('strata.cluster.addPeer'),
    };
    const fn = run[msg.action];
    if (!fn) return;
    await fn();
    // A build, download or chosen binary changes what this page says.
    if (msg.action !== ACTIONS.pickModel && current?.panel === panel) await refresh();
  });
  panel.onDidDispose(() => {
    sub.dispose();
    if (current?.panel === panel) current = undefined;
  });
  current = { panel, refresh };
  return refresh();
}

/** Everything the page shows, measured now. */
export async function machinePage(deps: MachinePanelDeps): Promise<MachinePage> {
  try {
    loadNative(deps.extensionPath);
  } catch {
    /* the probe falls back to sysfs and /proc */
  }
  const cfg = readModelsConfig();
  const bin = deps.controller.binaryNow;
  const [probe, machine, info, disk] = await Promise.all([
    probeAccelerators({ timeoutMs: 15_000 }),
    plannerMachine(bin?.path, cfg.bandwidthGBps),
    bin ? inspectLlamaServer(bin.path).catch(() => undefined) : Promise.resolve(undefined),
    freeDisk(cfg.downloadDir),
  ]);
  const summary = summarizeMachine({ probe, machine, ...(disk ? { disk } : {}) });
  const server: ServerFacts = bin
    ? {
        path: bin.path,
        kind: bin.kind,
        ...(bin.buildId ? { buildId: bin.buildId } : {}),
        ...(info?.version ? { version: info.version } : {}),
        backends: info?.backends ?? [],
        ...(info?.error ? { error: info.error } : {}),
      }
    : {};
  if (info) deps.log.info(`llama-server ${bin!.path}: ${describeDevices(info)}`);
  return { summary, server, at: new Date() };
}

/** Free space where models are downloaded (the nearest folder that exists). */
async function freeDisk(dir: string): Promise<{ dir: string; freeBytes: number } | undefined> {
  let d = path.resolve(dir);
  for (;;) {
    try {
      const s = await fs.promises.statfs(d);
      return { dir, freeBytes: s.bavail * s.bsize };
    } catch {
      const up = path.dirname(d);
      if (up === d) return undefined;
      d = up;
    }
  }
}

function checkingHtml(nonce: string, error?: string): string {
  const n = escapeHtml(nonce);
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${n}';">
<style nonce="${n}">body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 20px; } .dim { color: var(--vscode-descriptionForeground); }</style>
</head><body><h1>Your machine</h1><p class="dim">${escapeHtml(error ?? 'Checking the GPUs, memory and disk of this machine…')}</p></body></html>`;
}
