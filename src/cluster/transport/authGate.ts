import { AuthGate } from './peerHandshake';

// Rate limits failed logins on the peer agent. A 256-bit token cannot be guessed, so this is
// about not letting a scanner or a misconfigured client fill the log and the CPU: an address
// with too many failures in a window is refused for a while (doubling per repeat offence, up
// to a cap), and a flood of failures from many addresses blocks every address without a recent
// success for a short time.

export interface AuthGateOptions {
  /** Failures per address within windowMs before it is blocked. Default 5. */
  maxFailures?: number;
  windowMs?: number;
  /** First block; doubles for each further block of the same address, up to maxBlockMs. */
  blockMs?: number;
  maxBlockMs?: number;
  /** Failures from all addresses together per windowMs before unknown addresses are blocked. Default 50. */
  globalMaxFailures?: number;
  globalBlockMs?: number;
  now?: () => number;
  onBlock?: (address: string, ms: number, why: string) => void;
}

interface AddrState {
  failures: number[];
  blockedUntil: number;
  blocks: number;
  lastSuccess: number;
}

export class FailureRateGate implements AuthGate {
  private readonly addrs = new Map<string, AddrState>();
  private global: number[] = [];
  private globalBlockedUntil = 0;
  private readonly o: Required<Omit<AuthGateOptions, 'onBlock'>> & Pick<AuthGateOptions, 'onBlock'>;

  constructor(opts: AuthGateOptions = {}) {
    this.o = {
      maxFailures: opts.maxFailures ?? 5,
      windowMs: opts.windowMs ?? 60_000,
      blockMs: opts.blockMs ?? 60_000,
      maxBlockMs: opts.maxBlockMs ?? 15 * 60_000,
      globalMaxFailures: opts.globalMaxFailures ?? 50,
      globalBlockMs: opts.globalBlockMs ?? 10_000,
      now: opts.now ?? Date.now,
      onBlock: opts.onBlock,
    };
  }

  admit(address: string): number | undefined {
    const now = this.o.now();
    const st = this.addrs.get(address);
    if (st && st.blockedUntil > now) return st.blockedUntil - now;
    // A known-good address (logged in within the window) is not held hostage by a flood elsewhere.
    const trusted = st !== undefined && now - st.lastSuccess < this.o.windowMs * 10;
    if (!trusted && this.globalBlockedUntil > now) return this.globalBlockedUntil - now;
    return undefined;
  }

  failed(address: string, why: string): void {
    const now = this.o.now();
    const st = this.state(address);
    st.failures = st.failures.filter((t) => now - t < this.o.windowMs);
    st.failures.push(now);
    if (st.failures.length >= this.o.maxFailures) {
      const ms = Math.min(this.o.maxBlockMs, this.o.blockMs * 2 ** st.blocks);
      st.blocks += 1;
      st.blockedUntil = now + ms;
      st.failures = [];
      this.o.onBlock?.(address, ms, why);
    }
    this.global = this.global.filter((t) => now - t < this.o.windowMs);
    this.global.push(now);
    if (this.global.length >= this.o.globalMaxFailures) {
      this.globalBlockedUntil = now + this.o.globalBlockMs;
      this.global = [];
      this.o.onBlock?.('*', this.o.globalBlockMs, `${this.o.globalMaxFailures} failed logins within ${Math.round(this.o.windowMs / 1000)} s`);
    }
    this.prune(now);
  }

  succeeded(address: string): void {
    const st = this.state(address);
    st.failures = [];
    st.blocks = 0;
    st.lastSuccess = this.o.now();
  }

  private state(address: string): AddrState {
    let st = this.addrs.get(address);
    if (!st) {
      st = { failures: [], blockedUntil: 0, blocks: 0, lastSuccess: 0 };
      this.addrs.set(address, st);
    }
    return st;
  }

  private prune(now: number): void {
    if (this.addrs.size < 10_000) return;
    for (const [a, st] of this.addrs) {
      if (st.blockedUntil < now && st.failures.length === 0 && now - st.lastSuccess > this.o.windowMs * 10) this.addrs.delete(a);
    }
  }
}
