import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { Page } from 'playwright-core';
import { AssistantTurn, Conversation } from '../../src/core/chat/conversation';
import { openFileFromExplorer, runCommand, waitForNotification } from '../harness/browser';
import { chatFrame, chatFrameHandle, checkChatShipped, selectLines } from '../harness/chatView';
import { say } from '../harness/strataUi';
import { useWorkbench } from '../harness/workbench';

// The chat on the project's trained test model (test/fixtures/model), in the real VS Code
// (code-server + Chromium) against the real llama-server: a question about code in the open file
// is answered live, the answer streams into the webview as markdown, its fenced code renders as a
// code block whose text is exactly the model's (inert: markup in it is text), and Apply turns the
// block into a diff that is written only when accepted. chat.test.ts covers the rest of the chat
// (history, stop, themes) on the tiny random model, which never writes a code fence.

const FILE = 'stats.py';
const INITIAL = [
  '"""Small numeric helpers."""',
  '',
  '',
  'def mean(values):',
  '    total = 0',
  '    for v in values:',
  '        total += v',
  '    return total / len(values)',
  '',
  '',
  'def clamp(x, lo, hi):',
  '    if x < lo:',
  '        return lo',
  '    if x > hi:',
  '        return hi',
  '    return x',
  '',
].join('\n');
/** clamp(), lines 11-16 (1-based): the selection the question is about. */
const FIRST = 11;
const LAST = 16;
const QUESTION = 'Add a docstring to `clamp`.';

/** The code of the first fenced block of a markdown answer. */
function firstFence(markdown: string): { lang: string; code: string } | undefined {
  const m = /^```([\w+#.-]*)\n([\s\S]*?)\n```/m.exec(markdown);
  return m ? { lang: m[1], code: m[2] } : undefined;
}

describe('E2E: chat answers of the trained model in code-server (markdown with a code block, applied as a reviewed diff)', function () {
  this.timeout(300_000);

  let historyDir: string;
  const wb = useWorkbench({
    name: 'chat-answers',
    model: 'trained',
    files: { [FILE]: INITIAL },
    llama: { ctx: 4096 },
    prepare: (d) => {
      checkChatShipped((l) => say(l));
      historyDir = path.join(d.tmp, 'chat-history');
      fs.mkdirSync(historyDir, { recursive: true });
    },
    env: () => ({ STRATA_CHAT_HISTORY_DIR: historyDir }),
    settings: {
      'strata.completion.enabled': false,
      // The question is about the selection; the small model answers it best without the whole file beside it.
      'strata.chat.includeActiveFile': false,
      'strata.chat.maxTokens': 512,
      // Greedy, as completions are: the same question gets the same answer every run (default 0.2).
      'strata.chat.temperature': 0,
      'editor.autoIndent': 'none',
      'files.insertFinalNewline': false,
      'files.trimTrailingWhitespace': false,
    },
  });
  let page: Page;
  before(() => {
    page = wb.page;
  });

  /** The assistant turns saved in the history folder (what the model wrote, before any rendering). */
  function savedAnswers(): AssistantTurn[] {
    return fs
      .readdirSync(historyDir)
      .filter((n) => n.endsWith('.json'))
      .flatMap((n) => (JSON.parse(fs.readFileSync(path.join(historyDir, n), 'utf8')) as Conversation).turns)
      .filter((t): t is AssistantTurn => t.role === 'assistant');
  }

  it("a question about the selected function streams a markdown answer whose code block is exactly the model's code, rendered inert", async () => {
    await openFileFromExplorer(page, FILE);
    await selectLines(page, FIRST, LAST);
    await runCommand(page, 'Strata: Ask About Selection');
    const f = chatFrame(page);
    await f.locator('#chips .chip.selection', { hasText: `${FILE}:${FIRST}-${LAST}` }).waitFor({ state: 'visible', timeout: 60_000 });

    // Watch the webview render: every change to the answer, and whether a code block was ever
    // shown while its fence was still open (the live, streaming form).
    const frame = await chatFrameHandle(page);
    await frame.evaluate(() => {
      const seen = { lengths: [] as number[], liveBlock: false };
      (window as unknown as { __seen: typeof seen }).__seen = seen;
      new MutationObserver(() => {
        const answer = Array.from(document.querySelectorAll('.turn.assistant')).pop();
        if (!answer) return;
        seen.lengths.push((answer.querySelector('.md')?.textContent ?? '').length);
        if (answer.querySelector('.code-block.streaming')) seen.liveBlock = true;
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const t0 = Date.now();
    await f.locator('#input').fill(QUESTION);
    await f.locator('#input').press('Enter');
    const answer = f.locator('.turn.assistant').last();
    await answer.waitFor({ state: 'visible', timeout: 30_000 });
    await answer
      .locator('.meta .stats')
      .filter({ hasText: /\d+ tokens/ })
      .waitFor({ timeout: 120_000 });
    const seen = await frame.evaluate(() => (window as unknown as { __seen: { lengths: number[]; liveBlock: boolean } }).__seen);
    const steps = seen.lengths.filter((n, i) => i > 0 && n > seen.lengths[i - 1]).length;
    say(
      `answered in ${Date.now() - t0} ms: ${await answer.locator('.meta .stats').innerText()}; the text grew in ${steps} steps; a live code block was ${seen.liveBlock ? '' : 'not '}shown`,
    );
    assert.ok(steps >= 2, `the answer did not arrive in pieces: lengths ${seen.lengths.join(',')}`);
    assert.ok(seen.liveBlock, 'no code block was shown while the answer streamed');

    const saved = savedAnswers().pop();
    assert.ok(saved, 'the answer was not saved in the history');
    say(`the model wrote: ${JSON.stringify(saved.content)}`);
    const fence = firstFence(saved.content);
    assert.ok(fence, `this test needs an answer with a fenced code block; the model now says ${JSON.stringify(saved.content)}`);
    const block = answer.locator('.code-block').first();
    await block.waitFor({ state: 'visible', timeout: 10_000 });
    assert.strictEqual(await answer.locator('.code-block.streaming').count(), 0, 'a code block is still marked as streaming');
    assert.strictEqual((await block.locator('.code-lang').innerText()).trim(), fence.lang || 'text');
    // textContent, not innerText: the exact characters, '<' and '>' of the code included.
    const shownCode = await block.locator('code').evaluate((c) => c.textContent ?? '');
    assert.strictEqual(shownCode.replace(/\n$/, ''), fence.code, 'the code block does not show exactly the code the model wrote');
    // Inert: the rendered answer holds only markdown's own elements; nothing of the model's text became markup.
    const tags = await answer.locator('.md').evaluate((md) => Array.from(new Set(Array.from(md.querySelectorAll('*')).map((e) => e.tagName))));
    const unexpected = tags.filter((t) => !['P', 'PRE', 'CODE', 'SPAN', 'DIV', 'BUTTON', 'EM', 'STRONG', 'UL', 'OL', 'LI', 'BR', 'I'].includes(t));
    assert.deepStrictEqual(unexpected, [], `the answer rendered elements markdown does not make: ${unexpected.join(', ')}`);
  });

  it('Apply shows the code block as a diff of the selection, writes nothing until Accept, then the file holds exactly it', async () => {
    const saved = savedAnswers().pop()!;
    const fence = firstFence(saved.content);
    assert.ok(fence, 'the previous test found no code block');
    const answer = chatFrame(page).locator('.turn.assistant').last();
    await answer.locator('.code-block').first().locator('button[data-action="apply"]').click();
    await page.locator('.tabs-container .tab.active', { hasText: /Strata's change/ }).waitFor({ state: 'visible', timeout: 30_000 });
    await page.locator('.editor-instance .monaco-diff-editor').first().waitFor({ state: 'visible', timeout: 30_000 });
    // The diff shows what changes: inserted lines on the proposal's side.
    await page
      .locator('.editor-instance .monaco-diff-editor .line-insert, .editor-instance .monaco-diff-editor .char-insert')
      .first()
      .waitFor({ state: 'attached', timeout: 30_000 });
    assert.strictEqual(wb.readFile(FILE), INITIAL, 'the file changed before the change was accepted');
    await waitForNotification(page, new RegExp(`Apply Strata's change to ${FILE.replace('.', '\\.')} \\(lines ${FIRST}-${LAST}\\)\\?`));
    await page
      .locator('.notifications-toasts .notification-toast', { hasText: /Apply Strata's change/ })
      .getByRole('button', { name: 'Accept' })
      .click();
    await page.locator('.tabs-container .tab', { hasText: /Strata's change/ }).waitFor({ state: 'detached', timeout: 30_000 });
    await page.locator('.tabs-container .tab.active', { hasText: FILE }).waitFor({ state: 'visible', timeout: 30_000 });
    const lines = INITIAL.split('\n');
    const expected = [...lines.slice(0, FIRST - 1), fence.code, ...lines.slice(LAST)].join('\n');
    const text = await wb.saveAndRead(FILE, { until: (t) => t !== INITIAL });
    assert.strictEqual(text, expected, 'the file does not hold the code block in place of the selection');
  });
});
