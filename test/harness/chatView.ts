import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Frame, FrameLocator, Page } from 'playwright-core';
import { focusEditor, REPO_ROOT, runCommand } from './browser';

// The Strata chat view as the E2E tests drive it: its webview document (VS Code nests it in two
// iframes), opening it from the palette, selecting lines for "Ask About Selection", and a check
// that the built extension ships the chat at all.

/** Rebuilds dist/media when stale (the workbench fixture has built dist/extension.js) and checks that the extension ships the chat. */
export function checkChatShipped(log: (l: string) => void): void {
  const chatJs = path.join(REPO_ROOT, 'dist', 'media', 'chat.js');
  const newestMedia = Math.max(...fs.readdirSync(path.join(REPO_ROOT, 'media')).map((f) => fs.statSync(path.join(REPO_ROOT, 'media', f)).mtimeMs));
  if (!fs.existsSync(chatJs) || fs.statSync(chatJs).mtimeMs < newestMedia || !fs.existsSync(path.join(REPO_ROOT, 'dist', 'media', 'codicon.ttf'))) {
    log('dist/media is older than media/: rebuilding (node esbuild.mjs)');
    const r = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`node esbuild.mjs failed:\n${r.stdout}${r.stderr}`);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
  if (!(pkg.contributes?.views?.strata ?? []).some((v: { id: string }) => v.id === 'strata.chat')) {
    throw new Error('package.json contributes no "strata.chat" view: the chat view (contributes.views / viewsContainers) is missing from it.');
  }
}

/** The chat webview's document, for locators. */
export function chatFrame(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
}

/** The chat webview's frame itself, for evaluate() (e.g. observing what it renders while an answer streams). */
export async function chatFrameHandle(page: Page): Promise<Frame> {
  for (const f of page.frames()) {
    const el = await f.frameElement().catch(() => undefined); // the main frame has none
    if (el && (await el.getAttribute('id')) === 'active-frame' && (await f.$('#input'))) return f;
  }
  throw new Error('the chat webview is not open');
}

/** F1 → "Strata: Open Chat", then waits for its input box. */
export async function openChat(page: Page): Promise<FrameLocator> {
  await runCommand(page, 'Strata: Open Chat');
  const f = chatFrame(page);
  await f.locator('#input').waitFor({ state: 'visible', timeout: 60_000 });
  return f;
}

/** Selects lines `first`..`last` (1-based) of the active editor, from the start of the first to the end of the last. */
export async function selectLines(page: Page, first: number, last: number): Promise<void> {
  await focusEditor(page);
  await page.keyboard.press('Control+Home');
  for (let i = 1; i < first; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Home');
  for (let i = first; i < last; i++) await page.keyboard.press('Shift+ArrowDown');
  await page.keyboard.press('Shift+End');
}
