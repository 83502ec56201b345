import * as vscode from 'vscode';
import { CompletionFeature, CompletionFeatureDeps } from './feature';

// Entry point of inline completions: activate() calls registerCompletions once.
//
//   registerCompletions(context, { source, log, statusBar });
//
// The feature owns the provider, its registration and the completion commands; disposing the
// feature (with the extension) ends all of them.

export function registerCompletions(context: vscode.ExtensionContext, deps: CompletionFeatureDeps): CompletionFeature {
  const feature = new CompletionFeature(deps);
  context.subscriptions.push(feature);
  return feature;
}
