import * as assert from 'assert';
import { Backoff, backoffDelay } from '../../../src/core/daemonClient/backoff';

describe('backoff', () => {
  it('doubles from the initial delay up to the cap', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000 });
    assert.deepStrictEqual(
      [1, 2, 3, 4, 5, 6].map(() => b.next()),
      [100, 200, 400, 800, 1000, 1000],
    );
    assert.strictEqual(b.attempts, 6);
    b.reset();
    assert.strictEqual(b.next(), 100);
  });

  it('applies jitter downwards only', () => {
    assert.strictEqual(
      backoffDelay(3, { initialMs: 100, maxMs: 1e6, jitter: 0.5 }, () => 1),
      200,
    );
    assert.strictEqual(
      backoffDelay(3, { initialMs: 100, maxMs: 1e6, jitter: 0.5 }, () => 0),
      400,
    );
  });

  it('never overflows on a long outage', () => {
    assert.strictEqual(backoffDelay(10_000, { initialMs: 100, maxMs: 5000 }), 5000);
    assert.strictEqual(backoffDelay(0, { initialMs: 100, maxMs: 5000, factor: 3 }), 100);
  });
});
