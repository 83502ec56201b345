// The callers of load() waiting for one server to become ready: all of them settle together,
// with its status or with the error that ended the load (failure, cancel, shutdown).

import { ServerStatus } from '../core/protocol';

interface Waiter {
  resolve: (s: ServerStatus) => void;
  reject: (e: Error) => void;
}

export class ReadyWaiters {
  private waiters: Waiter[] = [];

  wait(): Promise<ServerStatus> {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  settle(result: ServerStatus | Error): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) {
      if (result instanceof Error) w.reject(result);
      else w.resolve(result);
    }
  }
}
