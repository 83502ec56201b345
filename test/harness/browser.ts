import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BrowserContext, chromium, Page } from 'playwright-core';
import type { RunningCodeServer } from './codeServer';

// Chromium (the system one, driven by playwright-core) on code-server's web workbench, and the
// few workbench gestures the E2E tests need. Keys: F1 opens the command palette (Ctrl+P and
// Ctrl+Shift+P belong to the browser); a file is opened by clicking it in the explorer.

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const ARTIFACTS_DIR = path.join(REPO_ROOT, '.test-artifacts');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export function chromiumPath(): string {
  const candidates = [
    process.env.STRATA_CHROMIUM,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
    '/usr/bin/google-chrome-stable',
  ].filter((p): p is string => !!p);
  for (const p of candidates) if (fs.existsSync(p)) return p;
  throw new Error(`No Chromium found (tried ${candidates.join(', ')}): install chromium (apt-get install chromium) or set STRATA_CHROMIUM.`);
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** Lines the page logged (console + page errors), for failure reports. */
  consoleText(): string;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh profile (removed by close()). */
export async function launchBrowser(opts: { viewport?: { width: number; height: number } } = {}): Promise<BrowserSession> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath(),
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: opts.viewport ?? { width: 1400, height: 900 },
      // code-server serves plain http on loopback; clipboard for paste-based tests.
      permissions: ['clipboard-read', 'clipboard-write'],
    });
  } catch (e) {
    fs.rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const lines: string[] = [];
  const push = (s: string): void => {
    lines.push(s);
    if (lines.length > 5000) lines.splice(0, lines.length - 5000);
  };
  page.on('console', (m) => push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => push(`[pageerror] ${e.message}`));
  let closed = false;
  return {
    context,
    page,
    consoleText: () => lines.join('\n'),
    close: async () => {
      if (closed) return;
      closed = true;
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface OpenWorkbenchOptions {
  /** Folder to open; default: the server's workspaceDir. */
  folder?: string;
  /**
   * The web workbench's launch payload (`?payload=`), e.g. [['extensionDevelopmentPath', uri],
   * ['extensionTestsPath', uri]]. Paths on the server's disk are given as vscode-remote URIs:
   * see remoteUri().
   */
  payload?: Array<[string, string]>;
  /** Default 90 s. */
  timeoutMs?: number;
}

/** `vscode-remote://127.0.0.1:PORT/abs/path`: how the browser workbench names a file on the server. */
export function remoteUri(server: RunningCodeServer, fsPath: string): string {
  const p = path.resolve(fsPath).split(path.sep).map(encodeURIComponent).join('/');
  return `vscode-remote://127.0.0.1:${server.port}${p.startsWith('/') ? '' : '/'}${p}`;
}

export function workbenchUrl(server: RunningCodeServer, opts: OpenWorkbenchOptions = {}): string {
  const u = new URL(server.url);
  u.searchParams.set('folder', opts.folder ?? server.workspaceDir);
  if (opts.payload) u.searchParams.set('payload', JSON.stringify(opts.payload));
  return u.toString();
}

/** Navigates to the workbench and waits until it is usable (see waitForWorkbench). */
export async function openWorkbench(page: Page, server: RunningCodeServer, opts: OpenWorkbenchOptions = {}): Promise<void> {
  await page.goto(workbenchUrl(server, opts), { waitUntil: 'domcontentloaded', timeout: opts.timeoutMs ?? 90_000 });
  await waitForWorkbench(page, { timeoutMs: opts.timeoutMs });
}

/**
 * Ready means: the workbench is laid out, the status bar is there, the explorer shows the
 * folder's files, and the remote connection is up (the status bar's remote indicator exists).
 */
export async function waitForWorkbench(page: Page, opts: { timeoutMs?: number; explorer?: boolean } = {}): Promise<void> {
  const timeout = opts.timeoutMs ?? 90_000;
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout });
  await page.locator('.part.statusbar').waitFor({ state: 'visible', timeout });
  await page.locator('.part.editor').waitFor({ state: 'visible', timeout });
  if (opts.explorer !== false) {
    await page.locator('.explorer-folders-view .monaco-list').first().waitFor({ state: 'visible', timeout });
  }
}

/** Opens a file by clicking its row in the explorer (top-level files, or after expanding folders). */
export async function openFileFromExplorer(page: Page, name: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const timeout = opts.timeoutMs ?? 30_000;
  const exact = new RegExp(`^${escapeRegExp(name)}$`);
  const row = page.locator('.explorer-folders-view .monaco-list-row').filter({ has: page.locator('.label-name', { hasText: exact }) });
  await row.first().click({ timeout });
  // The editor for it is there when its tab is the active one and Monaco has rendered lines.
  await page.locator('.tabs-container .tab.active .label-name', { hasText: exact }).waitFor({ state: 'visible', timeout });
  await page.locator('.editor-instance .monaco-editor .view-lines').first().waitFor({ state: 'visible', timeout });
}

/** Clicks into the active editor's text so that keyboard input goes there. */
export async function focusEditor(page: Page): Promise<void> {
  await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
}

/** F1, type the command's title as shown in the palette (e.g. "Strata: Show Server Status"), Enter. */
export async function runCommand(page: Page, title: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const timeout = opts.timeoutMs ?? 30_000;
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout });
  await input.fill(`>${title}`);
  const row = page
    .locator('.quick-input-widget .quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRegExp(title)}$`) }) });
  await row.first().waitFor({ state: 'visible', timeout });
  await row.first().click();
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout });
}

/** Waits for a status bar item whose text matches (e.g. an extension's item, shown once it has activated). */
export async function waitForStatusBarItem(page: Page, match: RegExp, opts: { timeoutMs?: number } = {}): Promise<void> {
  await page
    .locator('.part.statusbar .statusbar-item')
    .filter({ hasText: match })
    .first()
    .waitFor({ state: 'visible', timeout: opts.timeoutMs ?? 60_000 });
}

/** Texts of the notification toasts now shown. */
export async function notificationTexts(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-toast .notification-list-item-message').allInnerTexts();
}

/** Waits for a notification toast whose message matches, and returns its text. */
export async function waitForNotification(page: Page, match: RegExp, opts: { timeoutMs?: number } = {}): Promise<string> {
  const toast = page.locator('.notifications-toasts .notification-list-item-message').filter({ hasText: match });
  await toast.first().waitFor({ state: 'visible', timeout: opts.timeoutMs ?? 30_000 });
  return toast.first().innerText();
}

/**
 * The visible text of the active editor (Monaco renders only visible lines; fine for the small
 * files tests use). Non-breaking spaces become spaces.
 */
export async function visibleEditorText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const lines = Array.from(document.querySelectorAll('.editor-instance .monaco-editor .view-lines .view-line')) as HTMLElement[];
    return lines
      .map((l) => ({ top: parseFloat(l.style.top || '0'), text: (l.textContent ?? '').replace(/\u00a0/g, ' ') }))
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text)
      .join('\n');
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The ghost text Monaco shows in the active editor (inline part and any extra lines), or '' if none. */
export async function ghostText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const editor = document.querySelector('.editor-instance .monaco-editor');
    if (!editor) return '';
    const inline = Array.from(editor.querySelectorAll('.ghost-text-decoration, .ghost-text-decoration-preview'))
      .map((e) => e.textContent ?? '')
      .join('');
    // The lines after the first are a view zone below the cursor line (VS Code 1.100).
    const extra = Array.from(editor.querySelectorAll('.suggest-preview-text .view-line')).map((e) => e.textContent ?? '');
    return [inline, ...extra].join('\n').replace(/\u00a0/g, ' ');
  });
}

function safeName(s: string): string {
  return (
    s
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 120) || 'test'
  );
}

/**
 * Saves a screenshot (and any given texts, e.g. the code-server log) into
 * .test-artifacts/<test title>/ and returns that folder.
 */
export async function saveArtifacts(title: string, parts: { page?: Page; texts?: Record<string, string | undefined> }): Promise<string> {
  const dir = path.join(ARTIFACTS_DIR, `${safeName(title)}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  fs.mkdirSync(dir, { recursive: true });
  if (parts.page && !parts.page.isClosed()) {
    await parts.page.screenshot({ path: path.join(dir, 'screenshot.png'), fullPage: true, timeout: 15_000 }).catch((e: Error) => {
      fs.writeFileSync(path.join(dir, 'screenshot-error.txt'), e.message);
    });
  }
  for (const [name, text] of Object.entries(parts.texts ?? {})) {
    if (text !== undefined) fs.writeFileSync(path.join(dir, safeName(name)), text);
  }
  return dir;
}

/**
 * For a mocha afterEach hook:
 *   afterEach(async function () { await artifactsOnFailure(this, () => ({ page, texts: { 'code-server.log': server?.logText() } })); });
 * Does nothing unless the test that just ran failed.
 */
export async function artifactsOnFailure(ctx: Mocha.Context, parts: () => { page?: Page; texts?: Record<string, string | undefined> }): Promise<void> {
  const test = ctx.currentTest;
  if (!test || test.state !== 'failed') return;
  const dir = await saveArtifacts(test.fullTitle(), parts());
  process.stderr.write(`      failure artifacts: ${path.relative(process.cwd(), dir) || dir}\n`);
}
