import type * as vscode from 'vscode';

// The settings whose change needs more than reading them again, in one list each, so that a new
// setting is decided on in one place. Everything else is read from the settings snapshot
// (settings.ts) and applies to the next keystroke or question.

/** The daemon's llama-server restarts with new flags (SidecarController). */
// The cluster's peers and mode decide whether a model that does not fit here alone can load.
export const SERVER_RESTART_SETTINGS: readonly string[] = ['strata.model', 'strata.server', 'strata.sidecar', 'strata.cluster.peers', 'strata.cluster.mode'];

/** The memory planner plans again, and a running model reloads with the new plan (src/vscode/models). */
export const REPLAN_SETTINGS: readonly string[] = [
  'strata.models.contextSize',
  'strata.models.kvCacheType',
  'strata.models.slots',
  'strata.models.draft',
  'strata.models.planner',
  'strata.models.memoryBandwidthGBps',
];

/** The completion engine forgets its answers and resizes its extra context (src/vscode/completion). */
export const COMPLETION_RESET_SETTINGS: readonly string[] = ['strata.completion'];

/** The window looks again for the server it talks to (ServerConnectionSource). */
export const CONNECTION_SETTINGS: readonly string[] = ['strata.server.connectionFile'];

export function affectsAny(e: vscode.ConfigurationChangeEvent, settings: readonly string[]): boolean {
  return settings.some((s) => e.affectsConfiguration(s));
}
