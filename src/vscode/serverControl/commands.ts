import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { DAEMON_LOG_NAME, SERVER_LOG_NAME } from '../../core/daemonClient';
import { registerCommands } from '../commands';
import { collectServerStatus, describeStatus, ServerStatusReport } from '../serverStatus';
import { ServerConnectionSource } from '../serverConnectionSource';
import { SidecarController } from './controller';
import { benchmarkInstalledBackends, buildForThisMachine, downloadRelease, InstallerUiDeps } from './installerUi';

// The "Strata: ... Server" commands. Each returns what it did, so that tests and other
// commands can read it; none waits for a click on the notification it shows.

export interface ServerCommandDeps {
  controller: SidecarController;
  source: ServerConnectionSource;
  log: vscode.LogOutputChannel;
  extensionPath: string;
}

export function logFiles(controller: SidecarController): { daemonLog: string; serverLog: string } {
  const d = controller.status?.daemon;
  return {
    daemonLog: d?.logFile ?? path.join(controller.stateDir, DAEMON_LOG_NAME),
    serverLog: d?.serverLogFile ?? path.join(controller.stateDir, SERVER_LOG_NAME),
  };
}

export async function showServerStatus(deps: ServerCommandDeps): Promise<ServerStatusReport> {
  const { controller, log } = deps;
  const status = await collectServerStatus(deps.source, () => controller.report());
  const text = describeStatus(status);
  log.info(text);
  const sc = status.sidecar;
  if (sc) {
    if (sc.daemonPid) log.info(`  sidecar pid ${sc.daemonPid}, ${sc.clients} window(s); llama-server ${sc.phase}${sc.serverPid ? ` pid ${sc.serverPid}` : ''}`);
    if (sc.binary) {
      log.info(`  binary: ${sc.binary.path} (${sc.binary.kind})`);
      if (sc.binary.version) log.info(`  ${sc.binary.version}${sc.binary.builtWith ? `; ${sc.binary.builtWith}` : ''}`);
      log.info(
        `  devices: ${sc.binary.devices.length ? sc.binary.devices.map((d) => `${d.name} ${d.description}${d.totalMiB !== undefined ? ` (${d.freeMiB} of ${d.totalMiB} MiB free)` : ''}`).join('; ') : 'none besides the CPU'}`,
      );
      if (sc.binary.error) log.warn(`  ${sc.binary.error}`);
    }
    if (sc.installedBuilds?.length)
      log.info(`  installed builds: ${sc.installedBuilds.map((b) => `${b.id} [${b.backend}, ${b.source}${b.hasBench ? ', llama-bench' : ''}]`).join(', ')}`);
    if (sc.wanted) log.info(`  this window's plan: ${sc.wanted.binaryPath} -m ${sc.wanted.modelPath} ${sc.wanted.args.join(' ')}`);
    for (const l of sc.logTail ?? []) log.info(`  | ${l}`);
  }
  if (status.connected && status.ready) {
    void vscode.window.showInformationMessage(text, 'Show Logs').then((pick) => {
      if (pick) void vscode.commands.executeCommand('strata.server.showLogs');
    });
  } else if (sc?.problem && sc.problem.kind !== 'busy') {
    void controller.explainProblem();
  } else if (sc?.phase === 'failed') {
    void vscode.window.showErrorMessage(text, 'Restart Server', 'Show Logs').then((pick) => {
      if (pick === 'Restart Server') void vscode.commands.executeCommand('strata.server.restart');
      else if (pick) void vscode.commands.executeCommand('strata.server.showLogs');
    });
  } else if (sc?.phase === 'stopped' || sc?.phase === 'no-sidecar') {
    void vscode.window.showWarningMessage(text, 'Start Server').then((pick) => {
      if (pick) void vscode.commands.executeCommand('strata.server.start');
    });
  } else {
    void vscode.window.showWarningMessage(text);
  }
  return status;
}

export function registerServerCommands(deps: ServerCommandDeps): vscode.Disposable[] {
  const { controller, log } = deps;
  const ui: InstallerUiDeps = { controller, log, extensionPath: deps.extensionPath };
  const options = <T extends object>(o: T | undefined): T => (o && typeof o === 'object' ? o : ({} as T));
  return registerCommands('server', {
    'strata.showServerStatus': () => showServerStatus(deps),
    'strata.server.start': (o?: { switchModel?: boolean }) => controller.startServer(options(o)),
    'strata.server.stop': () => controller.stopServer(),
    'strata.server.restart': () => controller.restartServer(),
    'strata.server.showLogs': () => showLogs(controller, log),
    'strata.server.build': (backend?: string) => buildForThisMachine(ui, typeof backend === 'string' ? backend : undefined),
    'strata.server.download': (o?: { assetName?: string; releaseUrl?: string }) => downloadRelease(ui, options(o)),
    'strata.server.benchmarkBackends': (o?: { benchArgs?: string[]; nPrompt?: number; nGen?: number; repetitions?: number }) =>
      benchmarkInstalledBackends(ui, options(o)),
  });
}

/** Links both log files in the Strata output and offers to open one; returns their paths. */
function showLogs(controller: SidecarController, log: vscode.LogOutputChannel): { daemonLog: string; serverLog: string } {
  const files = logFiles(controller);
  log.info(`sidecar log: ${vscode.Uri.file(files.daemonLog).toString()}`);
  log.info(`llama-server log: ${vscode.Uri.file(files.serverLog).toString()}`);
  log.show(true);
  const open = (f: string) => {
    if (fs.existsSync(f)) void vscode.window.showTextDocument(vscode.Uri.file(f), { preview: true });
    else void vscode.window.showWarningMessage(`Strata: ${f} does not exist yet (nothing has run).`);
  };
  void vscode.window
    .showInformationMessage('Strata: the log files are linked in the Strata output.', 'Open llama-server Log', 'Open Sidecar Log')
    .then((pick) => {
      if (pick === 'Open llama-server Log') open(files.serverLog);
      else if (pick === 'Open Sidecar Log') open(files.daemonLog);
    });
  return files;
}
