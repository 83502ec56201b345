import * as vscode from 'vscode';
import { CatalogEntry } from '../../core/models/catalog/catalog';
import { DownloadError } from '../../core/models/download/downloadFile';
import { downloadModel } from '../../core/models/download/downloadModel';
import { hubEndpoint } from '../../core/models/download/hub';
import { ACTIONS, cancelledStep, diskFullStep, interruptedStep, NextStep } from '../walkthrough/nextSteps';
import { chooseDownloadFolder } from '../walkthrough/choosers';
import { readModelsConfig } from './settings';

// A model download from the picker: asked first (size, source, licence), then in a cancellable
// progress notification. Every way it can stop says what happened and offers the way on: a
// cancel keeps what arrived and offers Resume, a full disk offers another folder, a dropped
// network offers Retry. Returns the file to load, or undefined.

export type DownloadOutcome = { path: string } | { stopped: 'declined' | 'cancelled' | 'failed' | 'pick-another' };

export async function downloadEntry(entry: CatalogEntry, log: vscode.LogOutputChannel, opts: { ask?: boolean } = {}): Promise<DownloadOutcome> {
  if (!entry.repo || !entry.files?.length) {
    void vscode.window.showErrorMessage(`Strata: ${entry.label} has no download source; add it under "strata.models.custom" with its repo and file.`);
    return { stopped: 'failed' };
  }
  if (opts.ask !== false) {
    const size = entry.sizeBytes ? ` (${(entry.sizeBytes / 1e9).toFixed(1)} GB)` : '';
    const go = await vscode.window.showInformationMessage(
      `Download ${entry.label} ${entry.quant}${size} from ${entry.repo}${entry.licence ? ` (licence: ${entry.licence})` : ''}?`,
      'Download',
    );
    if (go !== 'Download') return { stopped: 'declined' };
  }
  const cfg = readModelsConfig();
  const label = `${entry.label} ${entry.quant}`;
  let reached = { bytes: 0, total: entry.sizeBytes };
  let step: NextStep | undefined;
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Strata: downloading ${label}`, cancellable: true },
    async (progress, token) => {
      const ac = new AbortController();
      const sub = token.onCancellationRequested(() => ac.abort());
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
            if (p.phase === 'downloading' || p.phase === 'hashing') reached = { bytes: p.bytes, total: p.total };
            const pct = p.total ? Math.floor((p.bytes / p.total) * 100) : 0;
            const what =
              p.phase === 'hashing'
                ? 'checking the part already downloaded'
                : p.phase === 'verifying'
                  ? 'verifying SHA-256'
                  : `${(p.bytes / 1e9).toFixed(1)} of ${(p.total / 1e9).toFixed(1)} GB`;
            progress.report({ message: `${p.count > 1 ? `part ${p.index + 1}/${p.count}: ` : ''}${what}`, increment: Math.max(0, pct - last) });
            last = Math.max(last, pct);
          },
        });
        log.info(`downloaded ${entry.repo}/${entry.files!.join(', ')}: ${r.parts.map((p) => `${p.sha256.slice(0, 12)}… ${p.verification}`).join(', ')}`);
        return r.path;
      } catch (e) {
        const code = e instanceof DownloadError ? e.code : undefined;
        const msg = e instanceof DownloadError ? e.message : `The download failed: ${(e as Error).message}`;
        log.warn(msg);
        step =
          code === 'cancelled'
            ? cancelledStep(label, reached.bytes, reached.total)
            : code === 'disk-full'
              ? diskFullStep(msg)
              : code === 'network' || code === 'size-mismatch'
                ? interruptedStep(msg)
                : { text: msg, actions: [ACTIONS.pickAnother] };
        return undefined;
      } finally {
        sub.dispose();
      }
    },
  );
  if (result) return { path: result };
  if (!step) return { stopped: 'failed' };
  const s: NextStep = step;
  const cancelled = s.actions.includes(ACTIONS.resume);
  // Said once, with its buttons; a cancel is the user's own doing: a calm information message.
  const pick = await (cancelled
    ? vscode.window.showInformationMessage(`Strata: ${s.text}`, ...s.actions)
    : vscode.window.showErrorMessage(`Strata: ${s.text}`, ...s.actions));
  if (pick === ACTIONS.resume || pick === ACTIONS.retry) return downloadEntry(entry, log, { ask: false });
  if (pick === ACTIONS.chooseFolder) {
    if (await chooseDownloadFolder()) return downloadEntry(entry, log, { ask: false });
    return { stopped: 'failed' };
  }
  if (pick === ACTIONS.pickAnother) return { stopped: 'pick-another' };
  return { stopped: cancelled ? 'cancelled' : 'failed' };
}
