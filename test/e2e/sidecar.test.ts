import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Page } from 'playwright-core';
import { SidecarClient } from '../../src/core/sidecar';
import { readSidecarLock } from '../../src/core/sidecar/lockFile';
import { isPidAlive } from '../../src/core/sidecar/processInfo';
import { ensureTinyModel } from '../fixtures/models';
import {
  artifactsOnFailure, BrowserSession, focusEditor, ghostText, launchBrowser, openFileFromExplorer, openWorkbench, REPO_ROOT, runCommand,
  waitForNotification, waitForStatusBarItem,
} from '../harness/browser';
import { RunningCodeServer, startCodeServer } from '../harness/codeServer';
import { getLlamaBinaries } from '../harness/llamaBinaries';
import { liveChildren, waitUntil } from '../harness/sidecar';
import { ensureExtensionBuilt } from '../exthost/build';

// The extension on the sidecar, as a user meets it: settings name the model and llama-server,
// the first window starts the daemon (VS Code's own Node, detached), the status bar goes to
// ready, ghost text comes from the daemon's llama-server; a second window (a second browser page,
// its own extension host) joins the same llama-server (one pid); Stop/Start from the palette;
// closing everything leaves no process once the daemon's idle exit (short here) has passed.

// The same file as ghostText.test.ts: the tiny random model is known to say something there.
const FILE = 'mathutils.py';
const INITIAL = '"""Small arithmetic helpers."""\n\n\ndef add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    ';
const IDLE_EXIT_MS = 4000;

/** llama-server processes whose parent is this daemon (from /proc, not from our own pid files). */
function llamaChildrenOf(daemonPid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const status = fs.readFileSync(`/proc/${d}/status`, 'utf8');
      if (/^Name:\s+llama-server$/m.test(status) && Number(/^PPid:\s+(\d+)$/m.exec(status)?.[1]) === daemonPid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function daemonStatus(stateDir: string) {
  const lock = readSidecarLock(stateDir);
  assert.ok(lock, 'no sidecar lock file');
  const c = new SidecarClient({ locate: async () => lock, reconnect: false, clientName: 'e2e probe' });
  try {
    await c.open(10_000);
    return await c.status();
  } finally {
    c.close();
  }
}

describe('E2E: the extension on the sidecar daemon in code-server', function () {
  this.timeout(300_000);
  if (process.platform !== 'linux') return;

  let tmp: string;
  let stateDir: string;
  let server: RunningCodeServer | undefined;
  let browser: BrowserSession | undefined;
  let page: Page;
  let page2: Page | undefined;
  let modelPath: string;
  let label: string;
  let daemonPid: number | undefined;
  const seenServerPids = new Set<number>();

  before(async function () {
    const t0 = Date.now();
    ensureExtensionBuilt((l) => process.stderr.write(`      ${l}\n`));
    modelPath = await ensureTinyModel();
    label = path.basename(modelPath, '.gguf');
    const bins = await getLlamaBinaries();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-sidecar-'));
    stateDir = path.join(tmp, 'state');
    const workspaceDir = path.join(tmp, 'workspace');
    fs.mkdirSync(workspaceDir, { recursive: true });
    fs.writeFileSync(path.join(workspaceDir, FILE), INITIAL);
    server = await startCodeServer({
      workspaceDir,
      extensionDevelopmentPaths: [REPO_ROOT],
      env: { STRATA_STATE_DIR: stateDir, STRATA_SIDECAR_CONFIG: JSON.stringify({ idleExitMs: IDLE_EXIT_MS, stopGraceMs: 3000 }) },
      settings: {
        'strata.model.path': modelPath,
        'strata.server.path': bins.serverPath,
        // Random weights: --no-repack (see DESIGN.md); 2 cores.
        'strata.server.extraArgs': ['--no-repack', '-t', '2', '--no-webui'],
        'strata.server.contextSize': 2048,
        'strata.completion.debounceMs': 50,
        'strata.completion.maxTokens': 16,
        'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
        'editor.suggestOnTriggerCharacters': false,
        'editor.wordBasedSuggestions': 'off',
        'editor.parameterHints.enabled': false,
        'editor.autoClosingBrackets': 'never',
        'editor.autoClosingQuotes': 'never',
        'files.trimTrailingWhitespace': false,
        'files.insertFinalNewline': false,
      },
    });
    browser = await launchBrowser();
    page = browser.page;
    await openWorkbench(page, server);
    process.stderr.write(`      (code-server and workbench up in ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  });

  afterEach(async function () {
    await artifactsOnFailure(this, () => {
      const texts: Record<string, string | undefined> = {
        'code-server.log': server?.logText(),
        'browser-console.log': browser?.consoleText(),
      };
      for (const f of ['sidecar.log', 'llama-server.log']) {
        try {
          texts[f] = fs.readFileSync(path.join(stateDir, f), 'utf8');
        } catch {
          /* not written */
        }
      }
      for (const [rel, text] of Object.entries(server?.vscodeLogs() ?? {})) texts[`vscode-${rel}`] = text;
      return { page: page2 ?? page, texts };
    });
  });

  after(async function () {
    await browser?.close();
    await server?.stop();
    // Whatever the tests did, nothing of theirs may survive.
    const pids = [daemonPid, ...seenServerPids, ...liveChildren(stateDir)].filter((p): p is number => !!p);
    for (const p of pids) {
      try {
        if (isPidAlive(p)) process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (tmp && !process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the window starts the daemon, the status bar reaches ready, and ghost text comes through it', async () => {
    const t0 = Date.now();
    await waitForStatusBarItem(page, new RegExp(`Strata · ${label.slice(0, 20)}`), { timeoutMs: 120_000 });
    process.stderr.write(`      (status bar ready ${((Date.now() - t0) / 1000).toFixed(1)} s after the workbench)\n`);
    const lock = readSidecarLock(stateDir);
    assert.ok(lock, 'the window did not start a sidecar');
    daemonPid = lock.pid;
    const kids = llamaChildrenOf(lock.pid);
    assert.strictEqual(kids.length, 1, `llama-servers under the daemon: ${kids.join(', ')}`);
    kids.forEach((k) => seenServerPids.add(k));
    // The test wrote no server.json: whatever answers comes from the daemon's llama-server.
    const st = await daemonStatus(stateDir);
    assert.strictEqual(st.server.phase, 'ready');
    assert.strictEqual(st.server.pid, kids[0]);
    assert.deepStrictEqual(st.server.plan?.args.slice(-4), ['--no-repack', '-t', '2', '--no-webui']);

    await openFileFromExplorer(page, FILE);
    await focusEditor(page);
    await page.keyboard.press('Control+End');
    await page.keyboard.type('return ', { delay: 20 });
    const ghost = page.locator('.editor-instance .monaco-editor .ghost-text-decoration');
    await ghost.first().waitFor({ state: 'visible', timeout: 60_000 });
    await page.waitForTimeout(300);
    const shown = await ghostText(page);
    assert.ok(shown.trim().length > 0, 'ghost text element is empty');
    await page.keyboard.press('Tab');
    await ghost.first().waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('"Show Server Status" names the daemon\'s llama-server, its llama.cpp version and backends', async () => {
    await runCommand(page, 'Strata: Show Server Status');
    const st = await daemonStatus(stateDir);
    const text = await waitForNotification(page, /Strata: llama-server at/, { timeoutMs: 20_000 });
    assert.ok(text.includes(`llama-server at ${st.server.endpoint!.url} with ${path.basename(modelPath)}: ready`), text);
    assert.match(text, /context \d+/);
    assert.match(text, /llama\.cpp .*commit [0-9a-f]+.*backends CPU/);
  });

  it('a second window joins the same llama-server (one pid, two windows)', async () => {
    page2 = await browser!.context.newPage();
    await openWorkbench(page2, server!);
    await waitForStatusBarItem(page2, new RegExp(`Strata · ${label.slice(0, 20)}`), { timeoutMs: 90_000 });
    const st = await daemonStatus(stateDir);
    // Two windows plus this probe.
    assert.strictEqual(st.daemon.clients, 3, `clients: ${st.daemon.clients}`);
    assert.strictEqual(st.daemon.pid, daemonPid);
    const kids = llamaChildrenOf(daemonPid!);
    assert.deepStrictEqual(kids, [...seenServerPids], 'the second window started another llama-server');
  });

  it('Stop Server stops it for every window; Start Server in the other window loads it again', async () => {
    await runCommand(page, 'Strata: Stop Server');
    await waitForStatusBarItem(page, /Strata: stopped/, { timeoutMs: 30_000 });
    await waitForStatusBarItem(page2!, /Strata: stopped/, { timeoutMs: 30_000 });
    await waitUntil('llama-server to exit', () => llamaChildrenOf(daemonPid!).length === 0, 15_000);
    await runCommand(page2!, 'Strata: Start Server');
    await waitForStatusBarItem(page, new RegExp(`Strata · ${label.slice(0, 20)}`), { timeoutMs: 90_000 });
    await waitForStatusBarItem(page2!, new RegExp(`Strata · ${label.slice(0, 20)}`), { timeoutMs: 30_000 });
    const kids = llamaChildrenOf(daemonPid!);
    assert.strictEqual(kids.length, 1);
    kids.forEach((k) => seenServerPids.add(k));
  });

  it('closing every window leaves no process after the daemon\'s idle exit', async () => {
    const pids = [daemonPid!, ...llamaChildrenOf(daemonPid!)];
    assert.strictEqual(pids.length, 2);
    await browser!.close();
    await server!.stop();
    const ms = await waitUntil('the daemon and llama-server to exit', () => pids.every((p) => !isPidAlive(p)), IDLE_EXIT_MS + 30_000, 100);
    process.stderr.write(`      (no Strata process ${(ms / 1000).toFixed(1)} s after code-server stopped; idle exit ${IDLE_EXIT_MS / 1000} s)\n`);
    assert.strictEqual(readSidecarLock(stateDir), undefined, 'the lock file outlived the daemon');
    assert.deepStrictEqual(liveChildren(stateDir), []);
  });
});
