import { SidecarClient } from '../../core/daemonClient';

// The generation speed the status bar shows: polls the daemon's metrics while llama-server is
// ready, and stops when it is not (a timer per window, never one that outlives the server).

const METRICS_EVERY_MS = 10_000;

export class MetricsPoller {
  private timer?: NodeJS.Timeout;
  private tps?: number;

  constructor(
    private readonly client: () => SidecarClient | undefined,
    private readonly onChange: () => void,
  ) {}

  /** Average generation tokens per second llama-server last reported. */
  get tokPerSec(): number | undefined {
    return this.tps;
  }

  /** Polls while `ready`. */
  follow(ready: boolean): void {
    if (ready) this.start();
    else this.stop();
  }

  private start(): void {
    if (this.timer) return;
    const poll = async () => {
      const c = this.client();
      if (!c?.connected || c.lastKnownStatus?.server.phase !== 'ready') return;
      try {
        const m = await c.metrics();
        const tps = m.server.predicted_tokens_seconds;
        if (typeof tps === 'number' && tps > 0 && tps !== this.tps) {
          this.tps = tps;
          this.onChange();
        }
      } catch {
        /* the next poll may work */
      }
    };
    this.timer = setInterval(() => void poll(), METRICS_EVERY_MS);
    void poll();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
