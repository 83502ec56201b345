import * as path from 'path';
import Mocha from 'mocha';
import { reasonOf, SkippedTest, writeSkipReport } from './skips';

// mocha's spec reporter, plus: each pending test's reason printed after the run, and written as
// JSON for scripts/test-all.mjs (see skips.ts). Named in .mocharc.json, so every mocha suite
// (unit, native, webview, integration, e2e) uses it.

class SpecWithSkipReasons extends Mocha.reporters.Spec {
  private readonly skipped: SkippedTest[] = [];

  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, (t: Mocha.Test) => {
      this.skipped.push({ title: t.fullTitle(), file: t.file && path.relative(process.cwd(), t.file), reason: reasonOf(t) });
    });
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => writeSkipReport(this.skipped));
  }

  override epilogue(): void {
    super.epilogue();
    // The reasons behind "N pending", one line each (no line may start with a number: test-all
    // counts the "N passing/failing/pending" lines).
    for (const s of this.skipped) process.stdout.write(`  skipped: ${s.title} (${s.reason})\n`);
    if (this.skipped.length) process.stdout.write('\n');
  }
}

export = SpecWithSkipReasons;
