import * as path from 'path';
import * as vscode from 'vscode';
import { describeDevices, inspectLlamaServer } from '../../daemon/installer';
import type { ChatApi } from '../chat';
import { registerCommands } from '../commands';
import { ServerConnectionSource } from '../serverConnectionSource';
import { findServerFor } from '../serverControl/binary';
import type { SidecarController } from '../serverControl/controller';
import { chooseServerBinary, LLAMA_SERVER_FOUND_KEY } from './choosers';
import { showMachinePanel } from './machinePanel';
import { ACTIONS, noServerStep } from './nextSteps';
import { pickLanguage, Sample, sampleFor } from './samples';
import { strataSettings } from '../workspaceTrust';

// The first run (issue 16): the "Get Started with Strata" walkthrough (package.json
// `contributes.walkthroughs`, media in media/walkthrough/), opened once on the first activation
// with no model configured, and the commands behind its steps. Each step is done by doing it
// (its completion events: a command run, a context key this module or the chat sets, a setting
// changed) and can be run again at any time.

export const WALKTHROUGH_ID = 'strata.strata-coder#strata.gettingStarted';
const OPENED_KEY = 'strata.walkthrough.openedOnce';

export interface WalkthroughDeps {
  controller: SidecarController;
  source: ServerConnectionSource;
  chat: ChatApi;
  log: vscode.LogOutputChannel;
  extensionPath: string;
}

export function registerWalkthrough(context: vscode.ExtensionContext, deps: WalkthroughDeps): void {
  const { controller, log } = deps;
  let sample: { uri: vscode.Uri; sample: Sample } | undefined;
  const keys = new Map<string, boolean>();
  const setKey = (key: string, value: boolean) => {
    if (keys.get(key) === value) return;
    keys.set(key, value);
    void vscode.commands.executeCommand('setContext', key, value);
  };
  // Steps complete on these keys (onContext). VS Code ignores a key that is already true when it
  // registers the walkthrough (which may be after this activation), so "llama-server found" is
  // set by what the user does: "Find llama-server" finding one, a build, a download or a chosen
  // file (LLAMA_SERVER_FOUND_KEY); a ready model is followed here.
  const follow = () => setKey('strata.modelReady', controller.status?.server.phase === 'ready' && !!controller.currentPlan);
  follow();

  context.subscriptions.push(
    controller.onDidChange(follow),
    ...registerCommands('walkthrough', {
      'strata.walkthrough.open': () => vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false),
      'strata.walkthrough.checkMachine': () => showMachinePanel(deps),
      'strata.walkthrough.findServer': () => findServer(deps, setKey),
      'strata.walkthrough.tryIt': async () => {
        sample = await openSample(context, log);
        if (sample) await triggerWhenReady(deps);
        return sample?.uri.fsPath;
      },
      'strata.walkthrough.ask': () => askAboutFile(deps, sample),
    }),
  );

  // First run: once, when no model is configured, unless the user turned walkthroughs off.
  // Through the trust-aware reader like every other read (a VS Code setting: never held back).
  const openOnInstall = strataSettings('workbench.welcomePage.walkthroughs').get<boolean>('openOnInstall', true);
  if (!context.globalState.get<boolean>(OPENED_KEY) && !controller.settingsNow.modelPath && openOnInstall) {
    void context.globalState.update(OPENED_KEY, true);
    log.info('first run: opening the "Get Started with Strata" walkthrough ("Strata: Get Started" opens it again)');
    void vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false);
  }
}

/** "Ask": about the sample when it is open, else about the file in front of the user. */
async function askAboutFile(deps: WalkthroughDeps, sample: { uri: vscode.Uri; sample: Sample } | undefined): Promise<void> {
  const open = vscode.window.visibleTextEditors.map((e) => e.document);
  const doc =
    (sample && open.find((d) => d.uri.toString() === sample.uri.toString())) ??
    vscode.window.activeTextEditor?.document ??
    open.find((d) => d.uri.scheme === 'file');
  if (!doc) {
    const pick = await vscode.window.showInformationMessage('Strata: open a file to ask about (or the sample of the step before).', 'Open the Sample');
    if (pick) await vscode.commands.executeCommand('strata.walkthrough.tryIt');
    return;
  }
  const question =
    sample && doc.uri.toString() === sample.uri.toString()
      ? sample.sample.question
      : `What does ${path.basename(doc.uri.path)} do, and what would you improve in it?`;
  await deps.chat.ask(question, doc.uri);
}

/** "Find llama-server": which build Strata runs and its backends, or the ways to get one. */
async function findServer(deps: WalkthroughDeps, setKey: (k: string, v: boolean) => void): Promise<string | undefined> {
  const { controller } = deps;
  const r = findServerFor(controller.settingsNow, controller.currentPlan?.modelPath, { stateDir: controller.stateDir });
  setKey(LLAMA_SERVER_FOUND_KEY, !!r.found);
  if (!r.found) {
    const step = noServerStep();
    const problem = r.problem?.code === 'not-found' ? step.text : (r.problem?.message ?? step.text);
    const pick = await vscode.window.showWarningMessage(`Strata: ${problem}`, ...step.actions);
    if (pick === ACTIONS.download) await vscode.commands.executeCommand('strata.server.download');
    else if (pick === ACTIONS.build) await vscode.commands.executeCommand('strata.server.build');
    else if (pick === ACTIONS.chooseServer) await chooseServerBinary();
    return undefined;
  }
  const info = await inspectLlamaServer(r.found.path).catch(() => undefined);
  const where =
    r.found.kind === 'managed'
      ? `Strata's ${r.found.backend ?? ''} build ${r.found.buildId ?? ''}`.replace(/\s+/g, ' ')
      : r.found.kind === 'setting'
        ? '"strata.server.path"'
        : r.found.kind === 'path'
          ? 'PATH'
          : 'a usual install place';
  const version = info?.version?.replace(/^version:\s*/, '') ?? 'version unknown';
  const text = `Strata runs llama-server ${version} from ${where}: ${r.found.path}. Backends: ${info?.backends.join(', ') || 'unknown'}${info ? `; ${describeDevices(info)}` : ''}.`;
  deps.log.info(text);
  // Nothing to decide: a notification that goes by itself (the build and download stay on the step).
  void vscode.window.showInformationMessage(`${text}${info?.error ? ` ${info.error}` : ''}`);
  return r.found.path;
}

/** Writes the sample for the user's language to Strata's storage (fresh each time) and opens it beside, cursor in place. */
async function openSample(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): Promise<{ uri: vscode.Uri; sample: Sample } | undefined> {
  const active = vscode.window.activeTextEditor?.document;
  const files = await vscode.workspace
    .findFiles('**/*.{py,js,mjs,cjs,jsx,ts,tsx,go,rs,c,h,cc,cpp,hpp,java}', '**/{node_modules,.git,dist,build,out,target,vendor,.venv,venv}/**', 500)
    .then(
      (u) => u.map((x) => x.path),
      () => [],
    );
  const sample = sampleFor(pickLanguage(active?.uri.scheme === 'file' ? active.languageId : undefined, files));
  const dir = vscode.Uri.joinPath(context.globalStorageUri, 'walkthrough');
  const uri = vscode.Uri.joinPath(dir, sample.fileName);
  try {
    await vscode.workspace.fs.createDirectory(dir);
    await vscode.workspace.fs.writeFile(uri, Buffer.from(sample.text, 'utf8'));
  } catch (e) {
    void vscode.window.showErrorMessage(
      `Strata could not write the sample file ${uri.fsPath} (${(e as Error).message}): check the permissions of that folder.`,
    );
    return undefined;
  }
  const doc = await vscode.workspace.openTextDocument(uri);
  const editor = await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: false });
  // Open from an earlier run with edits: start over from the sample.
  if (doc.getText() !== sample.text) {
    await editor.edit((e) => e.replace(new vscode.Range(0, 0, doc.lineCount, 0), sample.text));
  }
  const end = doc.lineAt(sample.cursorLine).range.end;
  editor.selection = new vscode.Selection(end, end);
  editor.revealRange(new vscode.Range(end, end), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  log.info(`walkthrough: sample ${sample.languageId} file ${uri.fsPath}`);
  return { uri, sample };
}

/**
 * Asks for a suggestion at the cursor once a model answers: at once when one is ready, after the
 * load (in a cancellable progress notification) when it is loading, and not at all, with the
 * next step, when there is no model or no llama-server.
 */
async function triggerWhenReady(deps: WalkthroughDeps): Promise<void> {
  const ready = () => {
    try {
      deps.source.current('fim');
      return true;
    } catch {
      return false;
    }
  };
  if (!ready()) {
    const problem = deps.controller.problemNow;
    if (problem && problem.kind !== 'busy') {
      await deps.controller.explainProblem();
      return;
    }
    const ok = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Strata: waiting for the model to load', cancellable: true },
      (_p, token) =>
        new Promise<boolean>((resolve) => {
          const t0 = Date.now();
          const timer = setInterval(() => {
            const failed = deps.controller.status?.server.phase === 'failed';
            if (ready() || failed || token.isCancellationRequested || Date.now() - t0 > 300_000) {
              clearInterval(timer);
              resolve(ready());
            }
          }, 250);
        }),
    );
    if (!ok) {
      const pick = await vscode.window.showWarningMessage(
        'Strata: the model is not ready, so there is no suggestion yet; see the server status, then run "Try It" again.',
        'Show Server Status',
      );
      if (pick) await vscode.commands.executeCommand('strata.showServerStatus');
      return;
    }
  }
  await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
}
