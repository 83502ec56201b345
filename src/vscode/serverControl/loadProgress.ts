import * as vscode from 'vscode';
import { SidecarClient } from '../../core/daemonClient';

// A load the user asked for shows in a progress notification with the daemon's percentage, and
// its Cancel stops the load (every long operation has a cancel button).

export function withLoadProgress(label: string, client: SidecarClient | undefined, onCancel: () => void, run: () => Promise<void>): Promise<void> {
  return Promise.resolve(
    vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Strata: loading ${label}`, cancellable: true },
      async (progress, token) => {
        const onProgress = loadPercentReporter(progress);
        client?.on('progress', onProgress);
        const cancel = token.onCancellationRequested(onCancel);
        try {
          await run();
        } finally {
          client?.off('progress', onProgress);
          cancel.dispose();
        }
      },
    ),
  );
}

/** Turns the daemon's load progress events into a notification's percentage (increments only go up). */
export function loadPercentReporter(progress: vscode.Progress<{ message?: string; increment?: number }>) {
  let last = 0;
  return (p: { kind: string; fraction?: number; stage?: string }): void => {
    if (p.kind !== 'load' || p.fraction === undefined) return;
    const pct = Math.floor(p.fraction * 100);
    progress.report({ message: `${pct}%${p.stage ? ` (${p.stage})` : ''}`, increment: Math.max(0, pct - last) });
    last = Math.max(last, pct);
  };
}
