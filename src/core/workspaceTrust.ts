// Settings a workspace must not set until the user trusts it (issue 13): each picks a program, a
// model or other file to load, a folder to write into, a URL that requests (and HF_TOKEN) go to,
// llama-server flags, or the instructions that steer every chat answer. A cloned repository's
// `.vscode/settings.json` setting `strata.server.path` would otherwise run its own script the
// moment the folder opens. package.json lists the same keys in
// `capabilities.untrustedWorkspaces.restrictedConfigurations` (a unit test keeps them equal), and
// the extension reads them through trustedValue() while the workspace is untrusted, so that a
// workspace value is ignored even where an editor does not hold restricted settings back itself.

export const RESTRICTED_SETTINGS = [
  'strata.server.path',
  'strata.model.path',
  'strata.server.extraArgs',
  'strata.server.releaseUrl',
  'strata.server.connectionFile',
  'strata.models.directories',
  'strata.models.downloadDirectory',
  'strata.models.hubEndpoint',
  'strata.models.custom',
  'strata.models.draft',
  'strata.cluster.peers',
  'strata.cluster.placement',
  'strata.chat.systemPrompt',
] as const;

const RESTRICTED = new Set<string>(RESTRICTED_SETTINGS);

export function isRestrictedSetting(fullKey: string): boolean {
  return RESTRICTED.has(fullKey);
}

/** The parts of VS Code's `WorkspaceConfiguration.inspect()` answer that matter here. */
export interface InspectedSetting<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
  defaultLanguageValue?: T;
  globalLanguageValue?: T;
  workspaceLanguageValue?: T;
  workspaceFolderLanguageValue?: T;
}

/** The value from the user's own settings (or the default), ignoring what the workspace sets. */
export function trustedValue<T>(i: InspectedSetting<T> | undefined, fallback: T): T {
  return i?.globalLanguageValue ?? i?.globalValue ?? i?.defaultLanguageValue ?? i?.defaultValue ?? fallback;
}
