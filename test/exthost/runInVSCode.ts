import { runTests } from '@vscode/test-electron';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TEST_SETTINGS } from '../harness/codeServer';
import { buildSuites, ensureExtensionBuilt, REPO_ROOT } from './build';
import { printReport } from './report';
import type { ExtHostReport } from './suite/index';

// Runs the extension-host suites in VS Code desktop through @vscode/test-electron, which
// downloads VS Code (from update.code.visualstudio.com) into .vscode-test/ on first use. That
// needs internet, so CI here uses runInCodeServer.ts instead; the suites and their bundle are the
// same. On a Linux machine without a display, run it under Xvfb:
//   xvfb-run -a npx tsx test/exthost/runInVSCode.ts [--grep <regexp>]
// Environment: STRATA_VSCODE_VERSION (default 1.100.3, the VS Code inside code-server 4.100.3),
// STRATA_VSCODE_EXECUTABLE (use an installed VS Code instead of downloading one).

function parseArgs(argv: string[]): { grep?: string } {
  const out: { grep?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--grep' || a === '-g') out.grep = argv[++i];
    else if (a.startsWith('--grep=')) out.grep = a.slice('--grep='.length);
    else throw new Error(`Unknown argument ${a}: use --grep <regexp>.`);
  }
  return out;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const log = (line: string): void => {
    process.stderr.write(`[exthost] ${line}\n`);
  };
  ensureExtensionBuilt(log);
  const bundle = await buildSuites();

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-exthost-vscode-'));
  const workspaceDir = path.join(tmp, 'workspace');
  const userDataDir = path.join(tmp, 'user-data');
  const extensionsDir = path.join(tmp, 'extensions');
  const resultsFile = path.join(tmp, 'results.json');
  fs.mkdirSync(workspaceDir, { recursive: true });
  fs.mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  fs.mkdirSync(extensionsDir, { recursive: true });
  fs.writeFileSync(path.join(workspaceDir, 'hello.py'), 'def greet(name):\n    return "hello " + name\n');
  fs.writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify(TEST_SETTINGS, null, 2));

  let code: number;
  try {
    code = await runTests({
      ...(process.env.STRATA_VSCODE_EXECUTABLE
        ? { vscodeExecutablePath: process.env.STRATA_VSCODE_EXECUTABLE }
        : { version: process.env.STRATA_VSCODE_VERSION || '1.100.3' }),
      extensionDevelopmentPath: REPO_ROOT,
      extensionTestsPath: bundle,
      extensionTestsEnv: {
        STRATA_EXTHOST_RESULTS: resultsFile,
        STRATA_STATE_DIR: path.join(tmp, 'state'),
        ...(args.grep ? { STRATA_EXTHOST_GREP: args.grep } : {}),
      },
      launchArgs: [
        workspaceDir,
        '--disable-extensions', // every other extension; the one under development still loads
        '--disable-workspace-trust',
        '--skip-welcome',
        '--skip-release-notes',
        '--disable-telemetry',
        '--disable-updates',
        '--user-data-dir',
        userDataDir,
        '--extensions-dir',
        extensionsDir,
      ],
    });
  } catch (e) {
    // runTests rejects (TestRunFailedError) when VS Code exits non-zero, i.e. a test failed.
    log(`VS Code: ${(e as Error).message}`);
    code = 1;
  }
  let report: ExtHostReport | undefined;
  if (fs.existsSync(resultsFile)) report = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as ExtHostReport;
  if (report) printReport(report, Date.now() - t0);
  else process.stdout.write(`\n  0 passing\n  1 failing\n\n  1) extension-host run: no results in ${resultsFile} (VS Code exit code ${code})\n`);
  fs.rmSync(tmp, { recursive: true, force: true });
  return code === 0 && report !== undefined && report.failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
