import * as assert from 'assert';
import { addressKey, PendingLogins } from '../../../src/cluster/agent/pendingLogins';

describe('peer agent: logins in flight, per address', () => {
  it('keys IPv4 (also IPv4-mapped) by address and IPv6 by its /64', () => {
    assert.strictEqual(addressKey('192.168.1.5'), '192.168.1.5');
    assert.strictEqual(addressKey('::ffff:192.168.1.5'), '192.168.1.5');
    assert.strictEqual(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.strictEqual(addressKey('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
    assert.strictEqual(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.strictEqual(addressKey('::1'), '0:0:0:0::/64');
    assert.strictEqual(addressKey('2001:db8::10.0.0.1'), '2001:db8:0:0::/64');
    assert.strictEqual(addressKey(undefined), 'unknown');
  });

  it('holds at most `limit` per key; at the total cap a lighter key displaces the oldest of the heaviest', () => {
    const p = new PendingLogins(4);
    const evicted: string[] = [];
    const take = (key: string, id: string, limit = 3) => p.take(key, limit, () => evicted.push(id));
    assert.ok(take('a', 'a1') && take('a', 'a2') && take('a', 'a3'));
    assert.strictEqual(take('a', 'a4'), undefined, 'over the per-key limit');
    const b1 = take('b', 'b1');
    assert.ok(b1);
    // Full (4): c holds none, a holds three: a's oldest goes.
    assert.ok(take('c', 'c1'));
    assert.deepStrictEqual(evicted, ['a1']);
    assert.strictEqual(p.count('a'), 2);
    // d (none) against a heaviest of two: a's next oldest goes. Then every key holds one: d may not take a second.
    assert.ok(take('d', 'd1'));
    assert.deepStrictEqual(evicted, ['a1', 'a2']);
    assert.strictEqual(take('d', 'd2'), undefined);
    // A newcomer with none still displaces the oldest of the (equally) heaviest: a3.
    assert.ok(take('e', 'e1'));
    assert.deepStrictEqual(evicted, ['a1', 'a2', 'a3']);
    b1!();
    b1!();
    assert.ok(take('f', 'f1'), 'a released slot is free again');
    // Full again (a double release would have freed a second slot): g displaces the oldest, c1.
    assert.ok(take('g', 'g1'));
    assert.deepStrictEqual(evicted, ['a1', 'a2', 'a3', 'c1']);
  });
});
