import * as vscode from 'vscode';
import { isRestrictedSetting, RESTRICTED_SETTINGS, trustedValue } from '../core/workspaceTrust';

// Strata in Restricted Mode (issue 13). package.json declares `untrustedWorkspaces: limited` with
// the restricted settings of src/core/workspaceTrust.ts: completions and chat keep working on the
// user's own server, while a workspace's values for settings that pick a program, a file, a URL
// or flags are ignored until the user trusts the workspace. VS Code already leaves those values
// out of the configuration it hands extensions; every `strata.*` read goes through
// strataSettings() all the same, which takes restricted settings from the user's own settings
// while the workspace is untrusted, so that no editor build or later refactor can let one in.

type ConfigurationScope = vscode.ConfigurationScope | null | undefined;

export interface StrataSettings {
  get<T>(key: string): T | undefined;
  get<T>(key: string, defaultValue: T): T;
  update(key: string, value: unknown, target?: vscode.ConfigurationTarget | boolean | null): Thenable<void>;
}

/** `vscode.workspace.getConfiguration(section)`, with restricted settings held back while the workspace is untrusted. */
export function strataSettings(section: string, scope?: ConfigurationScope): StrataSettings {
  const c = vscode.workspace.getConfiguration(section, scope);
  function get<T>(key: string, defaultValue?: T): T | undefined {
    if (vscode.workspace.isTrusted || !isRestrictedSetting(`${section}.${key}`))
      return defaultValue === undefined ? c.get<T>(key) : c.get<T>(key, defaultValue);
    return trustedValue<T | undefined>(c.inspect<T>(key), defaultValue);
  }
  return { get, update: (key, value, target) => c.update(key, value, target) };
}

/**
 * Restricted `strata.*` keys that the workspace's settings files name. VS Code does not tell
 * extensions which workspace values it held back, so they are read from the files; this only
 * feeds the notice (a key named in a comment is listed too), never the decision.
 */
async function restrictedKeysInWorkspace(): Promise<string[]> {
  const files = (vscode.workspace.workspaceFolders ?? []).map((f) => vscode.Uri.joinPath(f.uri, '.vscode', 'settings.json'));
  const wsFile = vscode.workspace.workspaceFile;
  if (wsFile && wsFile.scheme !== 'untitled') files.push(wsFile);
  const found = new Set<string>();
  for (const f of files) {
    let text: string;
    try {
      text = new TextDecoder().decode(await vscode.workspace.fs.readFile(f));
    } catch {
      continue; // no settings file there
    }
    for (const m of text.matchAll(/"(strata\.[\w.]+)"\s*:/g)) if (isRestrictedSetting(m[1])) found.add(m[1]);
  }
  return RESTRICTED_SETTINGS.filter((k) => found.has(k));
}

/**
 * Says once, in the log and in a notice, which workspace settings Restricted Mode holds back
 * (`heldBack`, also for the tests); when the user trusts the workspace, `onTrusted` re-reads
 * them (the model, llama-server and its flags).
 */
export function registerWorkspaceTrust(opts: { log: vscode.LogOutputChannel; onTrusted: () => void }): {
  heldBack: Promise<string[]>;
  disposable: vscode.Disposable;
} {
  const { log } = opts;
  const heldBack = vscode.workspace.isTrusted ? Promise.resolve([]) : restrictedKeysInWorkspace();
  void heldBack.then((keys) => {
    if (!keys.length || vscode.workspace.isTrusted) return;
    const msg = `Restricted Mode: Strata ignores this workspace's ${keys.join(', ')} (settings that could run a program, load or write files, or send requests elsewhere) and uses your own; trust the workspace to apply them.`;
    log.warn(msg);
    void vscode.window.showWarningMessage(`Strata: ${msg}`, 'Manage Workspace Trust').then((pick) => {
      if (pick) void vscode.commands.executeCommand('workbench.trust.manage');
    });
  });
  const disposable = vscode.workspace.onDidGrantWorkspaceTrust(() => {
    log.info('the workspace is trusted now: its Strata settings apply');
    opts.onTrusted();
  });
  return { heldBack, disposable };
}
