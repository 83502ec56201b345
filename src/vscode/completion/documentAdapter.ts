import * as vscode from 'vscode';
import { CompletionDocument } from '../../core/completion/document';

// A VS Code TextDocument as the completion core sees it: lines on demand, never getText() (which
// joins the whole file, 50 MB for a 50 MB file, on every keystroke).

const relativeNames = new Map<string, string>();

export function displayName(uri: vscode.Uri): string {
  const key = uri.toString();
  let name = relativeNames.get(key);
  if (name === undefined) {
    name = uri.scheme === 'untitled' ? uri.path : vscode.workspace.asRelativePath(uri, false);
    if (relativeNames.size > 1000) relativeNames.clear();
    relativeNames.set(key, name);
  }
  return name;
}

export function asCompletionDocument(doc: vscode.TextDocument): CompletionDocument {
  return {
    uri: doc.uri.toString(),
    fileName: displayName(doc.uri),
    languageId: doc.languageId,
    version: doc.version,
    lineCount: doc.lineCount,
    lineAt: (i: number) => (i >= 0 && i < doc.lineCount ? doc.lineAt(i).text : ''),
  };
}

/** Lines [start, end) of a document (clamped). */
export function linesOf(doc: vscode.TextDocument, start: number, end: number): string[] {
  const out: string[] = [];
  const e = Math.min(end, doc.lineCount);
  for (let i = Math.max(0, start); i < e; i++) out.push(doc.lineAt(i).text);
  return out;
}
