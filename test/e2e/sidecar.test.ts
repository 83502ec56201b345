import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { Page } from 'playwright-core';
import { readSidecarLock } from '../../src/core/daemonClient/lockFile';
import { isPidAlive } from '../../src/core/daemonClient/processInfo';
import { runCommand, waitForNotification, waitForStatusBarItem } from '../harness/browser';
import { getLlamaBinaries } from '../harness/llamaBinaries';
import { liveChildren, waitUntil } from '../harness/sidecar';
import { INLINE_COMPLETION_SETTINGS, useWorkbench } from '../harness/workbench';
import { linuxOnly } from '../harness/skips';

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

describe('E2E: the extension on the sidecar daemon in code-server', function () {
  this.timeout(300_000);
  linuxOnly("the sidecar daemon's process handling (process groups, /proc)");

  const wb = useWorkbench({
    name: 'sidecar',
    files: { [FILE]: INITIAL },
    // No llama-server and no server.json: the window is to start the daemon, which starts one.
    llama: false,
    env: { STRATA_SIDECAR_CONFIG: JSON.stringify({ idleExitMs: IDLE_EXIT_MS, stopGraceMs: 3000 }) },
    settings: async (d) => ({
      ...INLINE_COMPLETION_SETTINGS,
      'strata.model.path': d.modelPath,
      'strata.server.path': (await getLlamaBinaries()).serverPath,
      // Random weights: --no-repack (see DESIGN.md); 2 cores.
      'strata.server.extraArgs': ['--no-repack', '-t', '2', '--no-webui'],
      'strata.server.contextSize': 2048,
      'strata.completion.debounceMs': 50,
      'strata.completion.maxTokens': 16,
    }),
    // The first test times the way to "ready" itself.
    statusBar: false,
  });
  let stateDir: string;
  let page: Page;
  let page2: Page | undefined;
  let label: string;
  let daemonPid: number | undefined;
  const seenServerPids = new Set<number>();

  before(() => {
    stateDir = wb.stateDir;
    page = wb.page;
    label = path.basename(wb.modelPath, '.gguf');
  });

  it('the window starts the daemon, the status bar reaches ready, and ghost text comes through it', async () => {
    const t0 = Date.now();
    await waitForStatusBarItem(page, new RegExp(`Strata · ${label.slice(0, 20)}`), { timeoutMs: 120_000 });
    process.stderr.write(`      (status bar ready ${((Date.now() - t0) / 1000).toFixed(1)} s after the workbench)\n`);
    const lock = readSidecarLock(stateDir);
    assert.ok(lock, 'the window did not start a sidecar');
    daemonPid = lock.pid;
    wb.adopt(daemonPid); // wb.stop() kills what the tests saw, if still alive, whatever they did
    const kids = llamaChildrenOf(lock.pid);
    assert.strictEqual(kids.length, 1, `llama-servers under the daemon: ${kids.join(', ')}`);
    kids.forEach((k) => seenServerPids.add(k));
    wb.adopt(...kids);
    // The test wrote no server.json: whatever answers comes from the daemon's llama-server.
    const st = await wb.sidecarStatus();
    assert.strictEqual(st.server.phase, 'ready');
    assert.strictEqual(st.server.pid, kids[0]);
    assert.deepStrictEqual(st.server.plan?.args.slice(-4), ['--no-repack', '-t', '2', '--no-webui']);

    await wb.openFile(FILE, { atEnd: true });
    await wb.type('return ');
    const shown = await wb.waitForGhostText();
    assert.ok(shown.trim().length > 0, 'ghost text element is empty');
    await wb.acceptGhostText();
  });

  it('"Show Server Status" names the daemon\'s llama-server, its llama.cpp version and backends', async () => {
    await runCommand(page, 'Strata: Show Server Status');
    const st = await wb.sidecarStatus();
    const text = await waitForNotification(page, /Strata: llama-server at/, { timeoutMs: 20_000 });
    assert.ok(text.includes(`llama-server at ${st.server.endpoint!.url} with ${path.basename(wb.modelPath)}: ready`), text);
    assert.match(text, /context \d+/);
    assert.match(text, /llama\.cpp .*commit [0-9a-f]+.*backends CPU/);
  });

  it('a second window joins the same llama-server (one pid, two windows)', async () => {
    page2 = await wb.openWindow();
    await waitForStatusBarItem(page2, new RegExp(`Strata · ${label.slice(0, 20)}`), { timeoutMs: 90_000 });
    const st = await wb.sidecarStatus();
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
    wb.adopt(...kids);
  });

  it("closing every window leaves no process after the daemon's idle exit", async () => {
    const pids = [daemonPid!, ...llamaChildrenOf(daemonPid!)];
    assert.strictEqual(pids.length, 2);
    await wb.browserSession.close();
    await wb.server.stop();
    const ms = await waitUntil('the daemon and llama-server to exit', () => pids.every((p) => !isPidAlive(p)), IDLE_EXIT_MS + 30_000, 100);
    process.stderr.write(`      (no Strata process ${(ms / 1000).toFixed(1)} s after code-server stopped; idle exit ${IDLE_EXIT_MS / 1000} s)\n`);
    assert.strictEqual(readSidecarLock(stateDir), undefined, 'the lock file outlived the daemon');
    assert.deepStrictEqual(liveChildren(stateDir), []);
  });
});
