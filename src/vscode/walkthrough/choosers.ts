import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';
import { checkExecutable } from '../../daemon/installer';
import { strataSettings } from '../workspaceTrust';

// The "Choose…" buttons of the next steps: a file or folder dialog instead of a settings page,
// whose answer is checked and written to the user's settings (which, for machine-scoped settings
// in a remote window, VS Code keeps on the remote machine where they apply).

/** The context key of the walkthrough's llama-server step: the user found, built, downloaded or chose one. */
export const LLAMA_SERVER_FOUND_KEY = 'strata.llamaServerFound';

export function saidLlamaServerFound(): void {
  void vscode.commands.executeCommand('setContext', LLAMA_SERVER_FOUND_KEY, true);
}

/** Picks a llama-server executable and sets "strata.server.path"; its path, or undefined. */
export async function chooseServerBinary(): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    title: 'Choose the llama-server executable Strata should run',
    openLabel: 'Use This llama-server',
    canSelectFiles: true,
    canSelectFolders: false,
    canSelectMany: false,
    defaultUri: vscode.Uri.file(os.homedir()),
  });
  const file = picked?.[0]?.fsPath;
  if (!file) return undefined;
  const problem = checkExecutable(file);
  if (problem) {
    const why = problem === 'not-executable' ? `is not executable (run "chmod +x ${file}")` : problem === 'not-a-file' ? 'is not a file' : 'does not exist';
    void vscode.window
      .showErrorMessage(`Strata: ${file} ${why}; choose the llama-server executable itself (usually in llama.cpp's build/bin).`, 'Choose Again')
      .then((p) => {
        if (p) void chooseServerBinary();
      });
    return undefined;
  }
  await strataSettings('strata').update('server.path', file, vscode.ConfigurationTarget.Global);
  saidLlamaServerFound();
  void vscode.window.showInformationMessage(`Strata will run ${file}.`);
  return file;
}

/** Picks a folder for model downloads and sets "strata.models.downloadDirectory"; true when set. */
export async function chooseDownloadFolder(): Promise<boolean> {
  const picked = await vscode.window.showOpenDialog({
    title: 'Choose a folder on a disk with room for models',
    openLabel: 'Download Models Here',
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    defaultUri: vscode.Uri.file(os.homedir()),
  });
  const dir = picked?.[0]?.fsPath;
  if (!dir) return false;
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    void vscode.window.showErrorMessage(`Strata: ${dir} is not writable for you; choose a folder you can write to.`);
    return false;
  }
  await strataSettings('strata.models').update('downloadDirectory', dir, vscode.ConfigurationTarget.Global);
  return true;
}
