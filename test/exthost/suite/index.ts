import * as fs from 'fs';
import * as path from 'path';
import Mocha from 'mocha';
import { reasonOf } from '../../harness/skips';

// Entry point of the extension-host tests: the shape that VS Code's `--extensionTestsPath`
// expects (a module exporting `run(): Promise<void>`; a rejection means failure). It runs in the
// extension host, under the real `vscode` API, whether that host belongs to VS Code desktop
// (runInVSCode.ts) or to code-server (runInCodeServer.ts).
//
// Suites are the `*.test.ts` files beside this one. The runners bundle them with esbuild into one
// file (build.ts generates an entry that calls registerSuite() for each); unbundled (compiled by
// tsc next to this file) they are found by listing this folder.
//
// Environment (all optional):
//   STRATA_EXTHOST_RESULTS     file to write the results to as JSON (ExtHostReport)
//   STRATA_EXTHOST_GREP        only tests whose full title matches this regular expression
//   STRATA_EXTHOST_TIMEOUT_MS  per-test timeout, default 60000

export interface ExtHostTestResult {
  fullTitle: string;
  title: string;
  file?: string;
  state: 'passed' | 'failed' | 'pending';
  /** Why a pending test was skipped (skipBecause() in test/harness/skips.ts). */
  reason?: string;
  durationMs?: number;
  error?: { message: string; stack?: string; actual?: string; expected?: string };
}

export interface ExtHostReport {
  host: string;
  vscodeVersion: string;
  startedAt: string;
  durationMs: number;
  passes: number;
  failures: number;
  pending: number;
  tests: ExtHostTestResult[];
}

const registered: Array<{ file: string; load: () => unknown }> = [];

/** Called by the generated bundle entry, once per suite file, before run(). */
export function registerSuite(file: string, load: () => unknown): void {
  registered.push({ file, load });
}

function describeHost(): { host: string; vscodeVersion: string } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazily, in a try: a host without `vscode` still runs the suites and reports 'unknown'
    const vscode = require('vscode') as typeof import('vscode');
    return {
      host: `${vscode.env.appName} (${vscode.env.appHost}, ${vscode.env.uiKind === vscode.UIKind.Web ? 'web' : 'desktop'} UI)`,
      vscodeVersion: vscode.version,
    };
  } catch {
    return { host: 'unknown', vscodeVersion: 'unknown' };
  }
}

function errorOf(err: unknown): ExtHostTestResult['error'] {
  const e = err as { message?: unknown; stack?: unknown; actual?: unknown; expected?: unknown; showDiff?: boolean };
  const out: NonNullable<ExtHostTestResult['error']> = { message: String(e?.message ?? err) };
  if (typeof e?.stack === 'string') out.stack = e.stack;
  if (e && 'actual' in e && 'expected' in e && e.showDiff !== false) {
    const show = (v: unknown): string => {
      try {
        return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
      } catch {
        return String(v);
      }
    };
    out.actual = show(e.actual);
    out.expected = show(e.expected);
  }
  return out;
}

function writeReport(report: ExtHostReport): void {
  const file = process.env.STRATA_EXTHOST_RESULTS;
  if (!file) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(report, null, 2));
  fs.renameSync(tmp, file);
}

export async function run(): Promise<void> {
  const started = Date.now();
  const { host, vscodeVersion } = describeHost();
  const grep = process.env.STRATA_EXTHOST_GREP;
  const mocha = new Mocha({
    ui: 'bdd',
    color: false,
    reporter: 'spec',
    forbidOnly: true,
    timeout: Number(process.env.STRATA_EXTHOST_TIMEOUT_MS || 60_000),
    ...(grep ? { grep: new RegExp(grep) } : {}),
  });

  const tests: ExtHostTestResult[] = [];
  const loadErrors: ExtHostTestResult[] = [];

  if (registered.length > 0) {
    const { EVENT_FILE_PRE_REQUIRE, EVENT_FILE_REQUIRE, EVENT_FILE_POST_REQUIRE } = Mocha.Suite.constants;
    for (const { file, load } of registered) {
      mocha.suite.emit(EVENT_FILE_PRE_REQUIRE, globalThis, file, mocha);
      try {
        const exported = load();
        mocha.suite.emit(EVENT_FILE_REQUIRE, exported, file, mocha);
        mocha.suite.emit(EVENT_FILE_POST_REQUIRE, globalThis, file, mocha);
      } catch (e) {
        loadErrors.push({ fullTitle: `loading ${file}`, title: `loading ${file}`, file, state: 'failed', error: errorOf(e) });
      }
    }
  } else {
    for (const f of fs.readdirSync(__dirname).sort()) {
      if (/\.test\.(c?js|ts)$/.test(f) && !f.endsWith('.d.ts')) mocha.addFile(path.join(__dirname, f));
    }
    try {
      await mocha.loadFilesAsync();
    } catch (e) {
      loadErrors.push({ fullTitle: `loading suites from ${__dirname}`, title: 'loading suites', state: 'failed', error: errorOf(e) });
    }
  }

  const failures = await new Promise<number>((resolve) => {
    const runner = mocha.run((n) => resolve(n));
    const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING } = Mocha.Runner.constants;
    runner.on(EVENT_TEST_PASS, (t: Mocha.Test) => {
      tests.push({ fullTitle: t.fullTitle(), title: t.title, file: t.file, state: 'passed', durationMs: t.duration });
    });
    runner.on(EVENT_TEST_PENDING, (t: Mocha.Test) => {
      tests.push({ fullTitle: t.fullTitle(), title: t.title, file: t.file, state: 'pending', reason: reasonOf(t) });
    });
    // Also fires for failing hooks (t is then a Hook, e.g. '"before all" hook for "..."').
    runner.on(EVENT_TEST_FAIL, (t: Mocha.Runnable, err: unknown) => {
      tests.push({ fullTitle: t.fullTitle(), title: t.title, file: t.file, state: 'failed', durationMs: t.duration, error: errorOf(err) });
    });
  });

  tests.push(...loadErrors);
  const report: ExtHostReport = {
    host,
    vscodeVersion,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    passes: tests.filter((t) => t.state === 'passed').length,
    failures: tests.filter((t) => t.state === 'failed').length,
    pending: tests.filter((t) => t.state === 'pending').length,
    tests,
  };
  writeReport(report);
  for (const e of loadErrors) console.error(`${e.fullTitle} failed: ${e.error?.stack ?? e.error?.message}`);
  const failed = Math.max(failures, report.failures);
  if (failed > 0) throw new Error(`${failed} extension-host test(s) failed`);
  if (report.passes === 0 && report.pending === 0) throw new Error('No extension-host tests ran (none found, or none matched STRATA_EXTHOST_GREP).');
}
