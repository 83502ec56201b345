import type { ExtHostReport, ExtHostTestResult } from './suite/index';

// Prints an extension-host run's results (the JSON that suite/index.ts writes) the way mocha's
// spec reporter ends: "N passing", "N failing", "N pending", then each failure. scripts/test-all.mjs
// counts those lines.

export function printReport(report: ExtHostReport, wallMs: number): void {
  const out: string[] = [''];
  out.push(`  Extension-host tests in ${report.host}, VS Code ${report.vscodeVersion}`);
  const failed: ExtHostTestResult[] = [];
  for (const t of report.tests) {
    if (t.state === 'passed') out.push(`    ✔ ${t.fullTitle}${t.durationMs !== undefined ? ` (${t.durationMs}ms)` : ''}`);
    else if (t.state === 'pending') out.push(`    - ${t.fullTitle} (skipped: ${t.reason ?? 'no reason recorded'})`);
    else {
      failed.push(t);
      out.push(`    ${failed.length}) ${t.fullTitle}`);
    }
  }
  out.push('');
  out.push(`  ${report.passes} passing (${(wallMs / 1000).toFixed(1)}s)`);
  if (report.pending) out.push(`  ${report.pending} pending`);
  if (report.failures) out.push(`  ${report.failures} failing`);
  failed.forEach((t, i) => {
    out.push('');
    out.push(`  ${i + 1}) ${t.fullTitle}:`);
    const e = t.error;
    if (e) {
      out.push(`     ${e.message.split('\n').join('\n     ')}`);
      if (e.expected !== undefined || e.actual !== undefined) {
        out.push(`     expected: ${e.expected}`);
        out.push(`     actual:   ${e.actual}`);
      }
      if (e.stack) {
        const frames = e.stack
          .split('\n')
          .filter((l) => /^\s+at /.test(l))
          .slice(0, 8);
        if (frames.length) out.push(frames.map((l) => `     ${l.trim()}`).join('\n'));
      }
    }
  });
  out.push('');
  process.stdout.write(out.join('\n') + '\n');
}
