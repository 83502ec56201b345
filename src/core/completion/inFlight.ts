// The one request the engine keeps in flight. A request for the same context joins it (its
// answer serves both); another context aborts it, so the server slot frees at once. Callers wait
// with their own abort signal; the last one to give up aborts the request, except a prefetch,
// which finishes for the memory even when nobody waits.

export type RequestKind = 'completion' | 'warm-up' | 'prefetch';

export interface InFlight<R> {
  key: string;
  kind: RequestKind;
  controller: AbortController;
  promise: Promise<R | undefined>;
  waiters: number;
}

export class InFlightSlot<R> {
  current?: InFlight<R>;

  /** A request that is running and not aborted. */
  live(): InFlight<R> | undefined {
    const f = this.current;
    return f && !f.controller.signal.aborted ? f : undefined;
  }

  /** The live request for this context that a completion may join (a warm-up answers nobody). */
  joinable(key: string): InFlight<R> | undefined {
    const f = this.live();
    return f && f.key === key && f.kind !== 'warm-up' ? f : undefined;
  }

  /** Aborts the request in flight, if any. */
  cancel(): void {
    this.current?.controller.abort();
  }

  /** Joins `entry`: one more waiter, resolved with its answer or undefined when `signal` aborts first. */
  join(entry: InFlight<R>, signal?: AbortSignal): Promise<R | undefined> {
    entry.waiters++;
    return this.wait(entry, signal);
  }

  /** Waits for a shared request; the last waiter to give up aborts it. */
  wait(entry: InFlight<R>, signal?: AbortSignal): Promise<R | undefined> {
    if (!signal) return entry.promise;
    const giveUp = () => {
      if (--entry.waiters <= 0 && entry.kind !== 'prefetch') entry.controller.abort();
    };
    if (signal.aborted) {
      giveUp();
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        giveUp();
        resolve(undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.promise.then(
        (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(signal.aborted ? undefined : r);
        },
        () => resolve(undefined),
      );
    });
  }
}
