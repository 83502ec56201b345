import * as fs from 'fs';
import * as vscode from 'vscode';
import { isLockLive, readSidecarLock } from '../../core/daemonClient';

// The daemon's lock file as this window sees it: whether a daemon runs now, and a watcher that
// says when another window starts one later (so this window joins it instead of starting its own).

export function sidecarLockLive(stateDir: string): boolean {
  const lock = readSidecarLock(stateDir);
  return !!lock && isLockLive(lock);
}

/** Calls `onLive` whenever the lock file appears or changes and names a live daemon. */
export function watchSidecarLock(stateDir: string, onLive: () => void): vscode.Disposable {
  try {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch {
    /* the launcher reports it */
  }
  const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(stateDir), 'sidecar.lock'));
  const on = () => {
    if (sidecarLockLive(stateDir)) onLive();
  };
  return vscode.Disposable.from(w, w.onDidCreate(on), w.onDidChange(on));
}
