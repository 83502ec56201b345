import * as vscode from 'vscode';
import { CompletionSettings, DEFAULT_COMPLETION_SETTINGS } from '../core/completion/completionEngine';

// One place that maps `strata.*` settings onto the core's plain settings objects.

export function completionEnabled(languageId?: string): boolean {
  return vscode.workspace.getConfiguration('strata', languageId ? { languageId } : undefined).get<boolean>('completion.enabled', true);
}

export function debounceMs(): number {
  return vscode.workspace.getConfiguration('strata').get<number>('completion.debounceMs', 150);
}

export function completionSettings(): CompletionSettings {
  const c = vscode.workspace.getConfiguration('strata');
  return { ...DEFAULT_COMPLETION_SETTINGS, maxTokens: c.get<number>('completion.maxTokens', DEFAULT_COMPLETION_SETTINGS.maxTokens) };
}

export function connectionFileSetting(): string | undefined {
  const v = vscode.workspace.getConfiguration('strata').get<string>('server.connectionFile', '');
  return v ? v : undefined;
}
