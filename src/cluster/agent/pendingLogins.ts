import * as net from 'net';

// Connections that have not logged in yet. Each costs the agent a socket and a timer, and
// without limits per address 64 silent ones from one machine locked every sidecar out. So:
// one address (IPv6: one /64, which a single host usually controls whole) may hold a few
// handshakes at once; the total is capped; and at the cap a newcomer from an address holding
// fewer displaces the oldest handshake of the address holding the most, so that a flood from
// a few addresses cannot keep out another. A real handshake takes milliseconds; only the
// silent ones grow old.

export const DEFAULT_PER_ADDRESS_PENDING = 16;
export const DEFAULT_TOTAL_PENDING = 128;
/** The whole login (greeting and proof), not each read: 1.5 round trips and 250 ms for a wrong token. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 3000;

/** The key limits are kept by: the IPv4 address (also when IPv4-mapped), or the IPv6 /64. */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const a = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return mapped[1];
  if (!net.isIPv6(a)) return a;
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  let groups = h;
  if (tail !== undefined) {
    const t = tail ? tail.split(':') : [];
    const tailGroups = t.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    groups = [...h, ...new Array<string>(8 - h.length - tailGroups).fill('0'), ...t];
  }
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

interface Pending {
  since: number;
  evict: () => void;
}

export class PendingLogins {
  private readonly byKey = new Map<string, Pending[]>();
  private total = 0;

  constructor(private readonly maxTotal = DEFAULT_TOTAL_PENDING) {}

  /** Handshakes in flight from this key. */
  count(key: string): number {
    return this.byKey.get(key)?.length ?? 0;
  }

  /**
   * Room for one more handshake from `key`, which may hold at most `limit`: a release function,
   * or undefined when it must be refused. `evict` ends this handshake if a later one displaces it.
   */
  take(key: string, limit: number, evict: () => void): (() => void) | undefined {
    const n = this.count(key);
    if (n >= limit) return undefined;
    if (this.total >= this.maxTotal && !this.evictFromHeaviest(n)) return undefined;
    const p: Pending = { since: Date.now(), evict };
    const list = this.byKey.get(key) ?? [];
    list.push(p);
    this.byKey.set(key, list);
    this.total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.remove(key, p);
    };
  }

  /** Ends the oldest handshake of the key holding the most, if it holds more than `than`. */
  private evictFromHeaviest(than: number): boolean {
    let victimKey: string | undefined;
    let victims: Pending[] = [];
    for (const [k, list] of this.byKey) {
      if (list.length > victims.length || (list.length === victims.length && list[0].since < victims[0].since)) {
        victimKey = k;
        victims = list;
      }
    }
    if (victimKey === undefined || victims.length <= than) return false;
    const v = victims[0];
    this.remove(victimKey, v);
    v.evict();
    return true;
  }

  private remove(key: string, p: Pending): void {
    const list = this.byKey.get(key);
    const i = list?.indexOf(p) ?? -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    this.total -= 1;
    if (list.length === 0) this.byKey.delete(key);
  }
}
