// How a request to llama-server fails when the connection goes. Node's net and http, and undici
// under fetch, each say it their own way, often only in the error's `cause`. One list, so that
// the completion engine's retry, the chat's error line and the sidecar client's
// describeServerLoss agree on what "the connection was lost" looks like.

/** Every name, code and message along an error's `cause` chain, for matching. */
export function errorChainText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (typeof e !== 'object') {
      parts.push(String(e));
      break;
    }
    const x = e as { message?: string; code?: string; name?: string; cause?: unknown };
    parts.push(`${x.name ?? ''} ${x.code ?? ''} ${x.message ?? ''}`);
    e = x.cause;
  }
  return parts.join(' | ');
}

/**
 * The connection broke after it was made: the server crashed, was restarted, or closed a
 * kept-alive socket just as it was reused.
 */
export function isConnectionLost(err: unknown): boolean {
  return /terminated|other side closed|ECONNRESET|UND_ERR_SOCKET|socket hang up|EPIPE/i.test(errorChainText(err));
}

/** No connection could be made: nothing listens (the server is starting, restarting or stopped). */
export function isConnectionRefused(err: unknown): boolean {
  return /ECONNREFUSED|fetch failed/i.test(errorChainText(err));
}
