import * as assert from 'assert';
import * as path from 'path';
import { runCommand, waitForNotification } from '../harness/browser';
import { INLINE_COMPLETION_SETTINGS, useWorkbench } from '../harness/workbench';

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

  // Inline completions are asked for on edits; edits made before the extension (activation
  // event onStartupFinished) has registered its provider would ask no one. The fixture waits for
  // its status bar item, which appears in the same activate() call that registers the provider.
  const wb = useWorkbench({
    name: 'ghost',
    files: { [FILE]: INITIAL },
    settings: {
      ...INLINE_COMPLETION_SETTINGS,
      'strata.completion.debounceMs': 50,
      // 2 CPU cores: a short completion keeps the test quick; the mechanics are the same.
      'strata.completion.maxTokens': 16,
    },
  });

  it('shows ghost text produced by llama-server and Tab inserts it into the document', async () => {
    await wb.openFile(FILE, { atEnd: true });
    await wb.type(TYPED);
    const typedAt = Date.now();

    await wb.ghost().first().waitFor({ state: 'visible', timeout: 60_000 });
    process.stderr.write(`      (ghost text ${Date.now() - typedAt} ms after the last keystroke)\n`);
    const shown = await wb.waitForGhostText();
    assert.ok(shown.trim().length > 0, 'ghost text element is empty');

    await wb.acceptGhostText();
    const expectedStart = INITIAL + TYPED;
    const onDisk = await wb.saveAndRead(FILE, { until: (t) => t.length > expectedStart.length, timeoutMs: 15_000 });
    assert.ok(onDisk.startsWith(expectedStart), `the typed text is not in the saved file:\n${JSON.stringify(onDisk)}`);
    const accepted = onDisk.slice(expectedStart.length);
    assert.ok(accepted.length > 0, 'Tab inserted nothing (the saved file holds only what was typed)');
    // Monaco renders a tab in ghost text as spaces up to the next tab stop, and may drop trailing
    // whitespace; compare line by line with runs of blanks collapsed.
    const norm = (s: string): string[] => s.split('\n').map((l) => l.replace(/[ \t]+/g, ' ').trimEnd());
    assert.deepStrictEqual(norm(accepted), norm(shown), 'the accepted text differs from the ghost text that was shown');
  });

  it('F1 → "Strata: Show Server Status" reports the running llama-server and its model', async () => {
    await runCommand(wb.page, 'Strata: Show Server Status');
    const text = await waitForNotification(wb.page, /Strata: llama-server at/, { timeoutMs: 20_000 });
    const model = path.basename(wb.modelPath);
    assert.ok(text.includes(`llama-server at ${wb.llama.url} with ${model}: ready`), `notification says: ${text}`);
    assert.match(text, /context \d+/);
  });
});
