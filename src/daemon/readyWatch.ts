import { ServerEndpoint } from '../core/protocol';
import { activitySignature, isBusy, parsePrometheus } from './metrics';

// What the supervisor asks a running llama-server over HTTP: /health (is it loaded, is it hung)
// and /metrics (is anyone using it). The watches poll on an interval and act through callbacks,
// so the supervisor keeps every decision about its state.

/** /health's HTTP status: 503 while loading, 200 once requests are served; it needs no key. Throws when nothing answers in time. */
export async function healthStatus(url: string, timeoutMs: number): Promise<number> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer().catch(() => undefined);
  return res.status;
}

export async function fetchMetrics(ep: ServerEndpoint): Promise<Record<string, number>> {
  const res = await fetch(`${ep.url}/metrics`, { headers: { Authorization: `Bearer ${ep.apiKey}` }, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheus(text);
}

/** Whether the watched process is still the supervisor's: before a poll (and ready), after it. */
export interface WatchScope {
  ready(): boolean;
  current(): boolean;
}

/**
 * /health answers from llama-server's HTTP threads even while it generates, so silence means a
 * hang: calls onHung after `failures` checks in a row went unanswered (or not 200).
 */
export function watchForHang(
  url: string,
  check: { intervalMs: number; timeoutMs: number; failures: number },
  scope: WatchScope,
  onHung: (missed: number) => void,
): NodeJS.Timeout {
  let missed = 0;
  let inFlight = false;
  return setInterval(async () => {
    if (!scope.ready() || inFlight) return;
    inFlight = true;
    try {
      missed = (await healthStatus(url, check.timeoutMs)) === 200 ? 0 : missed + 1;
    } catch {
      missed += 1;
    } finally {
      inFlight = false;
    }
    if (missed >= check.failures && scope.current()) onHung(missed);
  }, check.intervalMs);
}

/** Calls onIdle once /metrics has shown no work for idleMs (polled at most every pollMs). */
export function watchForIdle(ep: ServerEndpoint, idleMs: number, pollMs: number, scope: WatchScope, onIdle: () => Promise<unknown>): NodeJS.Timeout {
  let lastSig = '';
  let lastActive = Date.now();
  let inFlight = false;
  const every = Math.max(50, Math.min(pollMs, Math.floor(idleMs / 4)));
  return setInterval(async () => {
    if (!scope.ready() || inFlight) return;
    inFlight = true;
    try {
      const m = await fetchMetrics(ep);
      const sig = activitySignature(m);
      if (isBusy(m) || sig !== lastSig) {
        lastSig = sig;
        lastActive = Date.now();
      } else if (Date.now() - lastActive >= idleMs && scope.current()) {
        await onIdle();
      }
    } catch {
      // An unanswered poll proves nothing either way.
    } finally {
      inFlight = false;
    }
  }, every);
}
