import type { Locator, Page } from 'playwright-core';
import { waitUntil } from './sidecar';

// What a user sees and does in the workbench around Strata, for the E2E tests: the status bar
// item and its tooltip, commands started from the palette, and the input boxes they open.

/** One line of test output under the current test (figures and observations). */
export function say(line: string): void {
  process.stderr.write(`      (${line})\n`);
}

/** The Strata status bar item. */
export function strataItem(page: Page): Locator {
  return page
    .locator('.part.statusbar .statusbar-item')
    .filter({ hasText: /Strata[ :·]/ })
    .first();
}

/** What Strata's status bar item says now (its text with codicons left out), or '' without one. */
export async function strataStatus(page: Page): Promise<string> {
  const texts = await page.locator('.part.statusbar .statusbar-item').allInnerTexts();
  return texts.map((t) => t.replace(/\s+/g, ' ').trim()).find((t) => /Strata[ :·]/.test(t)) ?? '';
}

async function poll(
  what: string,
  read: () => Promise<string>,
  pred: (text: string) => boolean,
  timeoutMs: number,
  everyMs: number,
  page: Page,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    last = await read();
    if (pred(last)) return last;
    if (Date.now() >= deadline) throw new Error(`${what} not seen within ${timeoutMs / 1000} s; it says "${last}"`);
    await page.waitForTimeout(everyMs);
  }
}

/** Polls the status bar until `pred` holds for Strata's item; returns its text (the last text seen in the error). */
export function waitForStatus(page: Page, what: string, pred: (text: string) => boolean, timeoutMs: number): Promise<string> {
  return poll(`status bar: ${what}`, () => strataStatus(page), pred, timeoutMs, 200, page);
}

/** Hovers Strata's status bar item and returns its tooltip as shown (rendered markdown, whitespace collapsed); '' when none showed. */
export async function strataTooltip(page: Page): Promise<string> {
  const hover = page.locator('.workbench-hover, .monaco-hover').filter({ hasText: 'Strata Coder' }).first();
  // Away first, so that a hover already shown is rendered afresh from the item's tooltip of now.
  await page.mouse.move(2, 2);
  await hover.waitFor({ state: 'hidden', timeout: 5000 }).catch(() => undefined);
  await strataItem(page).hover();
  try {
    await hover.waitFor({ state: 'visible', timeout: 5000 });
    return (await hover.innerText()).replace(/\s+/g, ' ').trim();
  } catch {
    return '';
  } finally {
    await page.mouse.move(2, 2);
  }
}

/** Hovers the status bar item until its tooltip satisfies `pred`; returns the tooltip. */
export function waitForTooltip(page: Page, what: string, pred: (text: string) => boolean, timeoutMs: number): Promise<string> {
  return poll(`status bar tooltip: ${what}`, () => strataTooltip(page), pred, timeoutMs, 300, page);
}

/** F1, the command's title, click its row: unlike runCommand(), does not wait for the palette to close (the command opens an input box in it). */
export async function startCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await input.fill(`>${title}`);
  const row = page
    .locator('.quick-input-widget .quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
  await row.first().waitFor({ state: 'visible', timeout: 30_000 });
  await row.first().click();
}

/**
 * Waits for the input box titled `title`, replaces what it holds by typing `text`, Enter, and waits
 * for that box to go (the next one reuses the widget with another title). Returns whether it was a
 * password box.
 */
export async function answerInputBox(page: Page, title: string, text: string): Promise<{ password: boolean }> {
  const widget = page.locator('.quick-input-widget');
  const heading = widget.locator('.quick-input-title', { hasText: title });
  await heading.waitFor({ state: 'visible', timeout: 30_000 });
  const input = widget.locator('.quick-input-box input');
  const password = (await input.getAttribute('type')) === 'password';
  await input.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(text, { delay: 5 });
  await waitUntil(`"${title}" to hold the typed text`, async () => (await input.inputValue()) === text, 10_000, 50);
  await page.keyboard.press('Enter');
  await heading.waitFor({ state: 'hidden', timeout: 30_000 });
  return { password };
}
