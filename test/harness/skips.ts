import * as fs from 'fs';
import * as path from 'path';

// Skips with a reason that the run's summary can show. mocha's own `this.skip()` takes no reason,
// so skipBecause() hangs it on the test (from a test or a beforeEach hook) or on the suite (from a
// before-all hook, which skips every test under it), and reasonOf() finds it again for a pending
// test. The reporter (skipReporter.ts) and the extension-host runner write the pending tests with
// their reasons as JSON into $STRATA_SKIP_REPORT_DIR, which scripts/test-all.mjs reads and checks
// against test/skip-allowlist.json under CI.

export interface SkippedTest {
  /** mocha's full title: every describe and the test, joined by spaces. */
  title: string;
  file?: string;
  reason: string;
}

type WithReason = { strataSkipReason?: string; type?: string };

/** Marks the running test (or, from a before-all hook, its whole suite) as skipped because `reason`. */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  const r = ctx.runnable() as Mocha.Runnable & WithReason;
  if (r.type === 'hook') {
    const each = /"before each"/.test(r.title) && ctx.currentTest;
    ((each ? ctx.currentTest : r.parent) as WithReason).strataSkipReason = reason;
  } else {
    r.strataSkipReason = reason;
  }
  return ctx.skip();
}

/**
 * In a describe body: register the tests everywhere, and skip them (with the reason) where
 * `reason` is defined, instead of leaving the describe empty on that platform.
 */
export function skipSuiteIf(reason: string | false | undefined): void {
  before(function () {
    if (reason) skipBecause(this, reason);
  });
}

/** For suites that only run on Linux (process groups, /proc, pid files, mounts). */
export function linuxOnly(why: string): void {
  skipSuiteIf(process.platform !== 'linux' && `needs Linux: ${why}`);
}

/** The reason recorded for a pending test, from the test up through its suites. */
export function reasonOf(test: Mocha.Runnable): string {
  for (let node: Mocha.Runnable | Mocha.Suite | undefined = test; node; node = node.parent) {
    const r = (node as WithReason).strataSkipReason;
    if (r) return r;
  }
  return test.fn ? 'skipped without a reason (use skipBecause() from test/harness/skips.ts)' : 'no test body (it() without a function)';
}

/** Writes one process's skipped tests where test-all collects them (no-op outside test-all). */
export function writeSkipReport(skipped: SkippedTest[], dir = process.env.STRATA_SKIP_REPORT_DIR): void {
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `skips-${process.pid}-${Date.now()}.json`), JSON.stringify(skipped, null, 1));
}
