import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { launchBrowser, remoteUri, saveArtifacts, workbenchUrl } from '../harness/browser';
import { ensureCodeServer, RunningCodeServer, startCodeServer } from '../harness/codeServer';
import { writeSkipReport } from '../harness/skips';
import { buildSuites, ensureExtensionBuilt, REPO_ROOT } from './build';
import { writeHostileWorkspace } from './hostileWorkspace';
import { printReport } from './report';
import type { ExtHostReport } from './suite/index';

// Runs the extension-host suites (test/exthost/suite) inside code-server's extension host, the
// way VS Code runs extension tests everywhere: the web workbench's launch payload carries
// `extensionDevelopmentPath` (this repo) and `extensionTestsPath` (the bundled suites) to the
// remote extension host, which loads the extension under development, calls the bundle's run(),
// and reports the exit code back to the page through `window.codeAutomationExit(code, logs)`
// (the hook @vscode/test-web uses). Detailed results come from a JSON file the suite writes
// (STRATA_EXTHOST_RESULTS, inherited by the extension host from code-server's environment).
// See README.md in this folder.
//
// Usage: npm run test:exthost [-- --grep <regexp>] [--keep]
//   --grep <re>  only tests whose full title matches
//   --keep       keep the temp folders (workspace, user data, results) and print where they are
//   --untrusted  workspace trust on: the same suites in a folder VS Code opens in Restricted Mode
// Environment: STRATA_EXTHOST_RUN_TIMEOUT_MS (default 300000) bounds the whole run.

function parseArgs(argv: string[]): { grep?: string; keep: boolean; untrusted: boolean } {
  const out: { grep?: string; keep: boolean; untrusted: boolean } = { keep: false, untrusted: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--grep' || a === '-g') out.grep = argv[++i];
    else if (a.startsWith('--grep=')) out.grep = a.slice('--grep='.length);
    else if (a === '--keep') out.keep = true;
    else if (a === '--untrusted') out.untrusted = true;
    else throw new Error(`Unknown argument ${a}: use --grep <regexp>, --keep or --untrusted.`);
  }
  return out;
}

const log = (line: string): void => {
  process.stderr.write(`[exthost] ${line}\n`);
};

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.keep) process.env.STRATA_KEEP_TEST_DIRS = '1';
  const t0 = Date.now();
  ensureExtensionBuilt(log);
  const bundle = await buildSuites();
  const install = await ensureCodeServer({ log });
  log(`code-server ${install.version} (VS Code ${install.vscodeVersion}); suites bundled in ${Date.now() - t0} ms`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-exthost-'));
  const workspaceDir = path.join(tmp, 'workspace');
  const resultsFile = path.join(tmp, 'results.json');
  fs.mkdirSync(workspaceDir, { recursive: true });
  fs.writeFileSync(path.join(workspaceDir, 'hello.py'), 'def greet(name):\n    return "hello " + name\n');
  // Restricted Mode: the folder is a cloned repository whose settings attack (suite/workspaceTrust.test.ts).
  if (args.untrusted) writeHostileWorkspace(workspaceDir);

  const env: Record<string, string> = {
    STRATA_EXTHOST_RESULTS: resultsFile,
    // Keep the extension off the user's real connection file and caches' state.
    STRATA_STATE_DIR: path.join(tmp, 'state'),
  };
  if (args.grep) env.STRATA_EXTHOST_GREP = args.grep;

  let server: RunningCodeServer | undefined;
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  let automationLogs: Array<{ relativePath: string; contents: string }> = [];
  let failure: string | undefined;
  let report: ExtHostReport | undefined;
  try {
    server = await startCodeServer({ workspaceDir, env, log, workspaceTrust: args.untrusted });
    browser = await launchBrowser();
    const page = browser.page;
    let exitCode: number | undefined;
    let resolveExit: (code: number) => void = () => undefined;
    const exited = new Promise<number>((resolve) => (resolveExit = resolve));
    // In place before the workbench loads; VS Code's web extension service calls it when the
    // extension host that ran the tests exits.
    await page.exposeFunction('codeAutomationExit', (code: number, logs?: Array<{ relativePath: string; contents: string }>) => {
      automationLogs = Array.isArray(logs) ? logs : [];
      exitCode = code;
      resolveExit(code);
    });
    const url = workbenchUrl(server, {
      payload: [
        ['extensionDevelopmentPath', remoteUri(server, REPO_ROOT)],
        ['extensionTestsPath', remoteUri(server, bundle)],
      ],
    });
    const tOpen = Date.now();
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 90_000 });
    // The user's part in Restricted Mode: when a suite opens the Workspace Trust editor
    // (workbench.trust.manage), click "Trust", as a person would.
    const trustClicker = args.untrusted
      ? setInterval(() => {
          void page
            .locator('.workspace-trust-editor .monaco-button', { hasText: /^Trust$/ })
            .first()
            .click({ timeout: 1000 })
            .catch(() => undefined);
        }, 1000)
      : undefined;
    const limit = Number(process.env.STRATA_EXTHOST_RUN_TIMEOUT_MS || 300_000);
    const outcome = await Promise.race([
      exited.then((code) => ({ kind: 'exit' as const, code })),
      server.exited.then((e) => ({ kind: 'server' as const, e })),
      new Promise<{ kind: 'timeout' }>((r) => setTimeout(() => r({ kind: 'timeout' }), limit).unref()),
    ]);
    clearInterval(trustClicker);
    log(`extension host finished in ${((Date.now() - tOpen) / 1000).toFixed(1)} s after opening the workbench`);
    if (outcome.kind === 'timeout') failure = `The extension-host tests did not finish within ${limit} ms.`;
    else if (outcome.kind === 'server') failure = `code-server exited (code ${outcome.e.code}, signal ${outcome.e.signal}) while the tests ran.`;

    if (fs.existsSync(resultsFile)) report = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as ExtHostReport;
    if (report) {
      printReport(report, Date.now() - t0);
      writeSkipReport(
        report.tests.filter((t) => t.state === 'pending').map((t) => ({ title: t.fullTitle, file: t.file, reason: t.reason ?? 'no reason recorded' })),
      );
    }
    if (!failure && !report) {
      failure = `The extension host exited with code ${exitCode} without writing ${resultsFile}: the suite bundle did not load or run() failed before mocha ran (see the extension host log in the artifacts).`;
    }
    if (!failure && exitCode !== 0 && report && report.failures === 0) {
      failure = `The extension host exited with code ${exitCode} although no test failed.`;
    }
  } catch (e) {
    failure = (e as Error).stack ?? String(e);
  }

  const ok = !failure && report !== undefined && report.failures === 0;
  if (!ok) {
    if (failure) process.stdout.write(`\n  ${report ? '' : '0 passing\n  1 failing\n\n  1) '}extension-host run: ${failure}\n`);
    const texts: Record<string, string | undefined> = {
      'code-server.log': server?.logText(),
      'browser-console.log': browser?.consoleText(),
      'results.json': report ? JSON.stringify(report, null, 2) : undefined,
    };
    for (const l of automationLogs) texts[`browser-${l.relativePath.replace(/[\\/]/g, '_')}`] = l.contents;
    for (const [rel, text] of Object.entries(server?.vscodeLogs() ?? {})) texts[`server-${rel.replace(/[\\/]/g, '_')}`] = text;
    const dir = await saveArtifacts('exthost', { page: browser?.page, texts }).catch(() => undefined);
    if (dir) log(`failure artifacts: ${path.relative(process.cwd(), dir) || dir}`);
  }
  await browser?.close();
  await server?.stop();
  if (args.keep) log(`kept ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
