import * as path from 'path';
import * as vscode from 'vscode';
import { strataCacheDir } from '../../core/paths';
import { loadNative, probeAccelerators } from '../../core/native';
import {
  assetsForPlatform,
  benchmarkBackends,
  DEFAULT_RELEASE_API,
  ensureLlamaBuild,
  fetchRelease,
  formatBenchTable,
  installLlamaRelease,
  InstalledRelease,
  listInstalledBuilds,
  LLAMA_BACKENDS,
  LlamaBackend,
  LlamaBuild,
  ModelBenchRecord,
  recommendedBackends,
} from '../../daemon/installer';
import { chooseServerBinary, saidLlamaServerFound } from '../walkthrough/choosers';
import { ACTIONS, NextStep, offlineStep } from '../walkthrough/nextSteps';
import { SidecarController } from './controller';

// The long operations behind "Build llama-server", "Download llama-server" and "Benchmark
// Backends": each in a cancellable progress notification, mirrored in the status bar, logged to
// the Strata channel, and followed by a re-plan so the new binary is used at once.

export interface InstallerUiDeps {
  controller: SidecarController;
  log: vscode.LogOutputChannel;
  extensionPath: string;
}

let probeCache: Promise<string[]> | undefined;

/** Backends the accelerator probe found working, best first (cached per window). */
export function probedBackends(extensionPath: string, log: vscode.LogOutputChannel): Promise<string[]> {
  probeCache ??= (async () => {
    try {
      loadNative(extensionPath);
    } catch {
      /* the probe falls back */
    }
    const p = await probeAccelerators({ timeoutMs: 15_000 });
    const ok = p.backends.filter((b) => b.status === 'ok').map((b) => b.backend);
    log.info(`accelerator probe (${p.via}): ${ok.join(', ') || 'none'}; devices: ${p.devices.map((d) => `${d.backend}:${d.name}`).join(', ') || 'none'}`);
    return recommendedBackends(ok);
  })().catch((e: Error) => {
    log.warn(`accelerator probe failed: ${e.message}`);
    return ['cpu'];
  });
  return probeCache;
}

function progressReporter(progress: vscode.Progress<{ message?: string; increment?: number }>): (message: string, percent?: number) => void {
  let last = 0;
  return (message, percent) => {
    if (percent === undefined) {
      progress.report({ message });
      return;
    }
    const inc = Math.max(0, percent - last);
    last = Math.max(last, percent);
    progress.report({ message: `${message} (${Math.floor(percent)}%)`, increment: inc });
  };
}

/** "Strata: Build llama-server for This Machine". Returns the build, or undefined if cancelled. */
export async function buildForThisMachine(d: InstallerUiDeps, backendArg?: string): Promise<LlamaBuild | undefined> {
  let backend = backendArg as LlamaBackend | undefined;
  if (!backend) {
    const recommended = (await probedBackends(d.extensionPath, d.log)).filter((b): b is LlamaBackend => (LLAMA_BACKENDS as readonly string[]).includes(b));
    const order = [...new Set<LlamaBackend>([...recommended, ...LLAMA_BACKENDS])];
    const pick = await vscode.window.showQuickPick(
      order.map((b, i) => ({ label: b, description: i === 0 ? 'recommended for this machine' : recommended.includes(b) ? 'detected' : '', backend: b })),
      { title: 'Build llama.cpp for which backend?', placeHolder: 'Builds run cmake and a C++ compiler; about 4 minutes on 2 cores for CPU' },
    );
    if (!pick) return undefined;
    backend = pick.backend;
  }
  if (!(LLAMA_BACKENDS as readonly string[]).includes(backend)) {
    void vscode.window.showErrorMessage(`Strata: unknown backend "${backend}": use one of ${LLAMA_BACKENDS.join(', ')}.`);
    return undefined;
  }
  const b = backend;
  d.controller.setActivity({ kind: 'build', message: `building llama.cpp (${b})` });
  try {
    const build = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Strata: building llama.cpp (${b})`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        const report = progressReporter(progress);
        return ensureLlamaBuild({
          backend: b,
          signal: abort.signal,
          onLog: (l) => d.log.trace(`[build] ${l}`),
          onProgress: (p) => {
            report(p.message, p.percent);
            d.controller.setActivity({ kind: 'build', message: p.message, percent: p.percent });
            if (p.phase !== 'build') d.log.info(`[build] ${p.message}`);
          },
        });
      },
    );
    d.log.info(`llama.cpp (${b}) ${build.built ? 'built' : 'was already built'}: ${build.serverPath}`);
    void vscode.window.showInformationMessage(`Strata: llama-server (${b}) is ${build.built ? 'built' : 'already built'}: ${build.binDir}`);
    saidLlamaServerFound();
    d.controller.setActivity(undefined);
    await d.controller.replanAndReload();
    return build;
  } catch (e) {
    const err = e as Error & { code?: string; logPath?: string };
    d.log.error(`llama.cpp build failed: ${err.message}`);
    if (err.code === 'ABORTED') void vscode.window.showInformationMessage(`Strata: ${err.message}`);
    else {
      void vscode.window.showErrorMessage(`Strata: ${err.message}`, ...(err.logPath ? ['Open Build Log'] : [])).then((pick) => {
        if (pick && err.logPath) void vscode.window.showTextDocument(vscode.Uri.file(err.logPath));
      });
    }
    return undefined;
  } finally {
    d.controller.setActivity(undefined);
  }
}

/** "Strata: Download llama-server": an official release archive, SHA-256 checked. */
export async function downloadRelease(d: InstallerUiDeps, opts: { assetName?: string; releaseUrl?: string } = {}): Promise<InstalledRelease | undefined> {
  const releaseUrl = opts.releaseUrl ?? d.controller.settingsNow.releaseUrl ?? DEFAULT_RELEASE_API;
  d.controller.setActivity({ kind: 'download', message: `reading ${releaseUrl}` });
  try {
    const release = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Strata: reading the llama.cpp release', cancellable: true },
      (_p, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        return fetchRelease(releaseUrl, { signal: abort.signal });
      },
    );
    const prefer = await probedBackends(d.extensionPath, d.log);
    const assets = assetsForPlatform(release, { prefer });
    if (!assets.length) {
      const text = `llama.cpp ${release.tag} publishes no archive for this platform (${process.platform}-${process.arch}): build llama-server for this machine instead, or choose one you have.`;
      d.log.error(text);
      void offerInstead({ text, actions: [ACTIONS.build, ACTIONS.chooseServer] });
      return undefined;
    }
    let assetName = opts.assetName;
    if (!assetName) {
      const pick = await vscode.window.showQuickPick(
        assets.map((a, i) => ({
          label: a.name,
          description: `${a.facts.backend}${i === 0 ? ' — recommended for this machine' : ''}${a.size ? ` — ${(a.size / 1048576).toFixed(0)} MB` : ''}`,
          detail: a.sha256 ? `SHA-256 ${a.sha256}` : 'no published SHA-256: cannot be verified',
          name: a.name,
        })),
        { title: `Download llama.cpp ${release.tag}` },
      );
      if (!pick) return undefined;
      assetName = pick.name;
    }
    const installed = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Strata: installing llama.cpp ${release.tag}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        const report = progressReporter(progress);
        return installLlamaRelease({
          release,
          assetName,
          cacheDir: strataCacheDir(),
          signal: abort.signal,
          onProgress: (p) => {
            report(p.message, p.percent);
            d.controller.setActivity({ kind: 'download', message: p.message, percent: p.percent });
            if (p.phase !== 'download') d.log.info(`[download] ${p.message}`);
          },
        });
      },
    );
    d.log.info(
      `llama-server ${installed.manifest.tag} (${installed.manifest.backend}) ${installed.installed ? 'installed' : 'was already installed'} in ${installed.dir}`,
    );
    void vscode.window.showInformationMessage(`Strata: llama-server ${installed.manifest.tag} (${installed.manifest.backend}) is installed.`);
    saidLlamaServerFound();
    d.controller.setActivity(undefined);
    await d.controller.replanAndReload();
    return installed;
  } catch (e) {
    const msg = (e as Error).message;
    const code = (e as { code?: string }).code;
    d.log.error(`llama-server download failed: ${msg}`);
    if (code === 'ABORTED') void vscode.window.showInformationMessage(`Strata: ${msg}`);
    else if (code === 'UNREACHABLE') void offerInstead(offlineStep(releaseUrl, /\(([^)]+)\)/.exec(msg)?.[1]));
    else void vscode.window.showErrorMessage(`Strata: ${msg}`);
    return undefined;
  } finally {
    d.controller.setActivity(undefined);
  }
}

/** The next step when no download is possible: build here, or a llama-server the user has. Not awaited by the command. */
async function offerInstead(step: NextStep): Promise<void> {
  const pick = await vscode.window.showErrorMessage(`Strata: ${step.text}`, ...step.actions);
  if (pick === ACTIONS.build) await vscode.commands.executeCommand('strata.server.build');
  else if (pick === ACTIONS.chooseServer) await chooseServerBinary();
}

/** "Strata: Benchmark Backends": llama-bench on every installed build for the current model. */
export async function benchmarkInstalledBackends(
  d: InstallerUiDeps,
  opts: { benchArgs?: string[]; nPrompt?: number; nGen?: number; repetitions?: number } = {},
): Promise<ModelBenchRecord | undefined> {
  const plan = d.controller.currentPlan;
  if (!plan) {
    void vscode.window.showWarningMessage('Strata: Benchmark Backends needs a model: pick one first.', ACTIONS.pickModel).then((p) => {
      if (p) void vscode.commands.executeCommand('strata.models.switch');
    });
    return undefined;
  }
  const builds = listInstalledBuilds(strataCacheDir());
  if (!builds.length) {
    void vscode.window.showWarningMessage(
      'Strata: no llama.cpp builds are installed to compare: run "Strata: Build llama-server for This Machine" or "Strata: Download llama-server" first.',
    );
    return undefined;
  }
  d.controller.setActivity({ kind: 'benchmark', message: `benchmarking ${builds.length} build(s) on ${path.basename(plan.modelPath)}` });
  let unloaded = false;
  try {
    // llama-bench loads the model itself: with a 40 GB model loaded twice the machine would swap.
    unloaded = await d.controller.unloadForMaintenance();
    const record = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Strata: benchmarking backends on ${path.basename(plan.modelPath)}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        return benchmarkBackends({
          modelPath: plan.modelPath,
          builds,
          signal: abort.signal,
          bench: { args: opts.benchArgs, nPrompt: opts.nPrompt, nGen: opts.nGen, repetitions: opts.repetitions },
          onLine: (l) => d.log.trace(`[bench] ${l}`),
          onProgress: (msg, i, total) => {
            progress.report({ message: `${msg} (${i + 1} of ${total})`, increment: i === 0 ? 0 : 100 / total });
            d.controller.setActivity({ kind: 'benchmark', message: msg, percent: (100 * i) / total });
            d.log.info(`[bench] ${msg}`);
          },
        });
      },
    );
    const table = formatBenchTable(record);
    for (const line of table.split('\n')) d.log.info(line);
    d.log.show(true);
    const winner = record.results.find((r) => r.buildId === record.defaultBuildId);
    if (winner?.figures) {
      void vscode.window.showInformationMessage(
        `Strata: ${winner.buildId} (${winner.backend}) is fastest for ${path.basename(plan.modelPath)}: ${winner.figures.tg.toFixed(1)} tok/s generation, ${winner.figures.pp.toFixed(0)} tok/s prefill. It is now this model's default${d.controller.settingsNow.serverPath ? ', but "strata.server.path" is set and wins: clear it to use the default' : ''}.`,
      );
    } else {
      void vscode.window.showWarningMessage('Strata: no build could run llama-bench on this model; see the Strata log.');
    }
    d.controller.setActivity(undefined);
    await d.controller.replanAndReload({ load: unloaded });
    return record;
  } catch (e) {
    d.log.error(`benchmark failed: ${(e as Error).message}`);
    void vscode.window.showErrorMessage(`Strata: ${(e as Error).message}`);
    if (unloaded) await d.controller.replanAndReload({ load: true });
    return undefined;
  } finally {
    d.controller.setActivity(undefined);
  }
}
