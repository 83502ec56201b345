import * as crypto from 'crypto';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import type { Page } from 'playwright-core';
import { renderChatHtml } from '../../media/chatHtml';
import type { HostToWebview, WebviewToHost } from '../../src/core/chat/webviewProtocol';

// Serves the chat webview exactly as the extension builds it (same html template, same esbuild
// settings for media/chat.ts and media/chat.css) from a loopback HTTP server, with a stub host
// (the shim below) in place of VS Code. The boundary under test is postMessage: the test plays
// the extension host by posting HostToWebview messages and reading what the page posted back.

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** First line says what it is: it is not VS Code, only its postMessage surface. */
export const HOST_SHIM = `// TEST SHIM standing in for VS Code's acquireVsCodeApi(): records what the page posts to the host.
(() => {
  const sent = [];
  let acquired = false;
  window.__toHost = sent;
  window.acquireVsCodeApi = () => {
    if (acquired) throw new Error('acquireVsCodeApi called twice');
    acquired = true;
    return Object.freeze({
      postMessage: (m) => { sent.push(JSON.parse(JSON.stringify(m))); },
      // VS Code keeps a webview's state across its reloads; sessionStorage does the same here.
      getState: () => JSON.parse(sessionStorage.getItem('vscode-state') || 'null') ?? undefined,
      setState: (s) => { sessionStorage.setItem('vscode-state', JSON.stringify(s)); },
    });
  };
})();`;

let built: Promise<string> | undefined;

/** Builds the webview bundle once per test process into a temp folder (never touches dist/). */
export function buildWebview(): Promise<string> {
  built ??= (async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-webview-'));
    process.once('exit', () => fs.rmSync(out, { recursive: true, force: true }));
    await esbuild.build({
      absWorkingDir: REPO_ROOT,
      bundle: true,
      platform: 'browser',
      target: 'es2022',
      format: 'iife',
      minify: true,
      logLevel: 'silent',
      entryPoints: { chat: 'media/chat.ts' },
      outdir: out,
    });
    await esbuild.build({
      absWorkingDir: REPO_ROOT,
      bundle: true,
      minify: true,
      logLevel: 'silent',
      entryPoints: { chat: 'media/chat.css' },
      outdir: out,
      loader: { '.ttf': 'file' },
      assetNames: '[name]',
    });
    return out;
  })();
  return built;
}

export interface WebviewServer {
  url: string;
  /** Paths requested that are not the page's own files (there must be none). */
  strayRequests: string[];
  close(): Promise<void>;
}

export async function startWebviewServer(opts: { shim?: string } = {}): Promise<WebviewServer> {
  const dir = await buildWebview();
  const strayRequests: string[] = [];
  const types: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.ttf': 'font/ttf' };
  let origin = '';
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/') {
      const html = renderChatHtml({
        cspSource: origin,
        nonce: crypto.randomBytes(18).toString('base64'),
        scriptUri: `${origin}/media/chat.js`,
        styleUri: `${origin}/media/chat.css`,
        testShim: opts.shim ?? HOST_SHIM,
      });
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
      return;
    }
    const m = u.pathname.match(/^\/media\/(chat\.js|chat\.css|codicon\.ttf)$/);
    if (m) {
      res.writeHead(200, { 'Content-Type': types[path.extname(m[1])] }).end(fs.readFileSync(path.join(dir, m[1])));
      return;
    }
    strayRequests.push(req.url ?? '');
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url: origin + '/',
    strayRequests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---- driving the page as the host would ----

export async function toWebview(page: Page, ...messages: HostToWebview[]): Promise<void> {
  await page.evaluate((ms) => {
    for (const m of ms) window.postMessage(m, '*');
  }, messages);
}

export async function fromWebview(page: Page): Promise<WebviewToHost[]> {
  return page.evaluate(() => (window as unknown as { __toHost: WebviewToHost[] }).__toHost.slice());
}

export async function clearFromWebview(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __toHost: unknown[] }).__toHost.length = 0;
  });
}

/** Waits for the page to post a message matching `pred`; returns it. */
export async function waitForHostMessage<T extends WebviewToHost>(page: Page, pred: (m: WebviewToHost) => m is T, timeoutMs = 5000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const hit = (await fromWebview(page)).find(pred);
    if (hit) return hit;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`the page did not post the expected message in ${timeoutMs} ms; it posted: ${JSON.stringify(await fromWebview(page)).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Two animation frames: enough for the page to apply queued deltas. */
export async function frames(page: Page, n = 2): Promise<void> {
  // A string, not a function: tsx would wrap named inner functions in a helper the page lacks.
  await page.evaluate(
    `new Promise((resolve) => { let left = ${n}; const tick = () => (--left <= 0 ? resolve() : requestAnimationFrame(tick)); requestAnimationFrame(tick); })`,
  );
}

/** Streams `text` into turn `turnId` in `chunk`-character deltas, `perMessage` deltas per evaluate. */
export async function streamText(page: Page, turnId: string, text: string, chunk = 4, perMessage = 16): Promise<void> {
  const deltas: HostToWebview[] = [];
  for (let i = 0; i < text.length; i += chunk) deltas.push({ type: 'delta', turnId, content: text.slice(i, i + chunk) });
  for (let i = 0; i < deltas.length; i += perMessage) {
    await toWebview(page, ...deltas.slice(i, i + perMessage));
    await frames(page, 1);
  }
  await frames(page);
}
