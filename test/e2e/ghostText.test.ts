import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Page } from 'playwright-core';
import { CONNECTION_FILE_NAME, writeServerConnection } from '../../src/core/llama/serverConnection';
import { ensureTinyModel } from '../fixtures/models';
import {
  artifactsOnFailure,
  focusEditor,
  ghostText,
  launchBrowser,
  BrowserSession,
  openFileFromExplorer,
  openWorkbench,
  REPO_ROOT,
  runCommand,
  waitForNotification,
  waitForStatusBarItem,
} from '../harness/browser';
import { RunningCodeServer, startCodeServer } from '../harness/codeServer';
import { RunningLlamaServer, startLlamaServer } from '../harness/llamaServer';
import { ensureExtensionBuilt } from '../exthost/build';

// The whole path a user meets, nothing faked: the real llama-server (CPU build of the pinned
// llama.cpp) on the tiny random-weight Qwen2 model, the connection file the launcher would write,
// code-server (VS Code 1.100) with the Strata extension from dist/, and Chromium typing into a
// Python file. Random weights give gibberish, so the test checks the mechanics (ghost text appears,
// Tab inserts exactly it), not the quality.

const FILE = 'mathutils.py';
// The file ends inside a function body, with the indentation already there: no auto-indent and
// no bracket auto-closing can change what the test types.
const INITIAL = '"""Small arithmetic helpers."""\n\n\ndef add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    ';
const TYPED = 'return ';

describe('E2E: inline completion in code-server from the real llama-server', function () {
  this.timeout(300_000);

  let tmp: string;
  let llama: RunningLlamaServer | undefined;
  let server: RunningCodeServer | undefined;
  let browser: BrowserSession | undefined;
  let page: Page;
  let modelPath: string;

  before(async function () {
    const t0 = Date.now();
    ensureExtensionBuilt((l) => process.stderr.write(`      ${l}\n`));
    modelPath = await ensureTinyModel();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-ghost-'));
    const stateDir = path.join(tmp, 'state');
    const workspaceDir = path.join(tmp, 'workspace');
    fs.mkdirSync(workspaceDir, { recursive: true });
    fs.writeFileSync(path.join(workspaceDir, FILE), INITIAL);

    llama = await startLlamaServer({ model: modelPath });
    // What `npm start` / the sidecar writes; the extension finds it through STRATA_STATE_DIR.
    writeServerConnection(
      { url: llama.url, apiKey: llama.apiKey, model: modelPath, pid: llama.pid },
      path.join(stateDir, CONNECTION_FILE_NAME),
    );
    server = await startCodeServer({
      workspaceDir,
      extensionDevelopmentPaths: [REPO_ROOT],
      env: { STRATA_STATE_DIR: stateDir },
      settings: {
        'strata.completion.debounceMs': 50,
        // 2 CPU cores: a short completion keeps the test quick; the mechanics are the same.
        'strata.completion.maxTokens': 16,
        // Keep the suggest widget and auto-edits out of the way of Tab and of the typed text.
        'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
        'editor.suggestOnTriggerCharacters': false,
        'editor.wordBasedSuggestions': 'off',
        'editor.parameterHints.enabled': false,
        'editor.autoClosingBrackets': 'never',
        'editor.autoClosingQuotes': 'never',
        'editor.formatOnType': false,
        'editor.inlineSuggest.enabled': true,
        'files.trimTrailingWhitespace': false,
        'files.insertFinalNewline': false,
      },
    });
    browser = await launchBrowser();
    page = browser.page;
    await openWorkbench(page, server);
    process.stderr.write(`      (llama-server, code-server and workbench up in ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  });

  afterEach(async function () {
    await artifactsOnFailure(this, () => {
      const texts: Record<string, string | undefined> = {
        'code-server.log': server?.logText(),
        'llama-server.log': llama?.logText(),
        'browser-console.log': browser?.consoleText(),
      };
      for (const [rel, text] of Object.entries(server?.vscodeLogs() ?? {})) texts[`vscode-${rel}`] = text;
      return { page, texts };
    });
  });

  after(async function () {
    await browser?.close();
    await server?.stop();
    await llama?.stop();
    if (tmp && !process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('shows ghost text produced by llama-server and Tab inserts it into the document', async () => {
    // Inline completions are asked for on edits; edits made before the extension (activation
    // event onStartupFinished) has registered its provider would ask no one. Its status bar item
    // appears in the same activate() call that registers the provider.
    await waitForStatusBarItem(page, /Strata/);
    await openFileFromExplorer(page, FILE);
    await focusEditor(page);
    await page.keyboard.press('Control+End');
    await page.keyboard.type(TYPED, { delay: 20 });
    const typedAt = Date.now();

    const ghost = page.locator('.editor-instance .monaco-editor .ghost-text-decoration');
    await ghost.first().waitFor({ state: 'visible', timeout: 60_000 });
    process.stderr.write(`      (ghost text ${Date.now() - typedAt} ms after the last keystroke)\n`);
    // Let the rendering settle (a later keystroke-free request can only replace it with the same text).
    await page.waitForTimeout(300);
    const shown = await ghostText(page);
    assert.ok(shown.trim().length > 0, 'ghost text element is empty');

    await page.keyboard.press('Tab');
    await page.locator('.editor-instance .monaco-editor .ghost-text-decoration').first().waitFor({ state: 'detached', timeout: 10_000 });
    await page.keyboard.press('Control+S');

    const file = path.join(server!.workspaceDir, FILE);
    const expectedStart = INITIAL + TYPED;
    let onDisk = '';
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      onDisk = fs.readFileSync(file, 'utf8');
      if (onDisk.length > expectedStart.length) break;
      await page.waitForTimeout(100);
    }
    assert.ok(onDisk.startsWith(expectedStart), `the typed text is not in the saved file:\n${JSON.stringify(onDisk)}`);
    const accepted = onDisk.slice(expectedStart.length);
    assert.ok(accepted.length > 0, 'Tab inserted nothing (the saved file holds only what was typed)');
    // Monaco renders a tab in ghost text as spaces up to the next tab stop, and may drop trailing
    // whitespace; compare line by line with runs of blanks collapsed.
    const norm = (s: string): string[] => s.split('\n').map((l) => l.replace(/[ \t]+/g, ' ').trimEnd());
    assert.deepStrictEqual(norm(accepted), norm(shown), 'the accepted text differs from the ghost text that was shown');
  });

  it('F1 → "Strata: Show Server Status" reports the running llama-server and its model', async () => {
    await runCommand(page, 'Strata: Show Server Status');
    const text = await waitForNotification(page, /Strata: llama-server at/, { timeoutMs: 20_000 });
    const model = path.basename(modelPath);
    assert.ok(text.includes(`llama-server at ${llama!.url} with ${model}: ready`), `notification says: ${text}`);
    assert.match(text, /context \d+/);
  });
});
