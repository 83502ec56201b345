import { errorChainText, isConnectionLost, isConnectionRefused } from '../llama/connectionErrors';
import { ErrorCode, ErrorInfo } from '../protocol';

// Errors the client library throws. Each message is one sentence a user can act on; `code`
// lets the extension pick a reaction (offer a retry, open the logs, ask to replace a daemon).

export type ClientErrorCode = ErrorCode | 'disconnected' | 'unauthorized' | 'incompatible' | 'start-failed' | 'unreachable' | 'timeout';

export class SidecarError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly logTail?: string[],
  ) {
    super(message);
    this.name = 'SidecarError';
  }

  static fromInfo(info: ErrorInfo): SidecarError {
    return new SidecarError(info.code, info.message, info.logTail);
  }
}

/** A daemon of another protocol version runs and did not make way in time. */
export class SidecarIncompatibleError extends SidecarError {
  constructor(
    readonly daemonPid: number,
    readonly daemonProtocol: number,
    ours: number,
  ) {
    super(
      'incompatible',
      daemonProtocol < ours
        ? `An older Strata sidecar (pid ${daemonPid}) still serves other VS Code windows: reload those windows, or confirm to replace it now.`
        : `A newer Strata sidecar (pid ${daemonPid}) serves other VS Code windows: update Strata in this window (or reload it), or confirm to replace that sidecar now.`,
    );
    this.name = 'SidecarIncompatibleError';
  }
}

/**
 * When an inference stream or request to llama-server fails because the server went away (it
 * crashed, was killed, or is restarting), the fetch error is a bare "terminated" or
 * "ECONNREFUSED". This turns it into a sentence; undefined for errors of another kind.
 */
export function describeServerLoss(err: unknown): string | undefined {
  const text = errorChainText(err);
  if (/AbortError/.test(text) && !/terminated/.test(text)) return undefined;
  if (isConnectionLost(err)) {
    return 'The model server stopped in the middle of the reply (it crashed or was restarted); Strata restarts it on its own, so try again in a few seconds.';
  }
  if (isConnectionRefused(err)) {
    return 'The model server is not running right now (it is starting, restarting or was stopped); try again in a few seconds or run "Strata: Start Server".';
  }
  return undefined;
}
