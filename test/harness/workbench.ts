import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Locator, Page } from 'playwright-core';
import { CONNECTION_FILE_NAME, writeServerConnection } from '../../src/core/llama/serverConnection';
import type { SidecarStatus } from '../../src/core/protocol';
import { SidecarClient } from '../../src/core/daemonClient';
import { readSidecarLock } from '../../src/core/daemonClient/lockFile';
import { isPidAlive } from '../../src/core/daemonClient/processInfo';
import { ensureExtensionBuilt } from '../exthost/build';
import { ensureTinyModel, ensureTrainedModel } from '../fixtures/models';
import {
  artifactsOnFailure,
  BrowserSession,
  focusEditor,
  ghostText,
  launchBrowser,
  openFileFromExplorer,
  openWorkbench,
  REPO_ROOT,
  waitForStatusBarItem,
} from './browser';
import { RunningCodeServer, startCodeServer } from './codeServer';
import { RunningLlamaServer, startLlamaServer } from './llamaServer';
import { daemonPidOf, liveChildren, waitUntil } from './sidecar';

// The E2E fixture: what every browser test of the extension sets up and tears down. A temp
// folder with a workspace and a state dir (STRATA_STATE_DIR), the real llama-server on a test
// model (the tiny random one, or the trained one) announced through server.json (or none, for
// tests where the extension starts the sidecar), code-server with the Strata extension from
// dist/, Chromium on its workbench, and Strata's status bar item. stop() undoes all of it
// whatever state a test left it in.
//
//   const wb = useWorkbench({ name: 'ghost', files: { 'a.py': '...' }, settings: INLINE_COMPLETION_SETTINGS });
//   it('...', async () => { await wb.openFile('a.py', { atEnd: true }); await wb.type('return '); ... });

/** Where a workbench's files are, before anything starts (for options given as functions). */
export interface WorkbenchDirs {
  /** The temp folder holding everything below; removed by stop() unless STRATA_KEEP_TEST_DIRS is set. */
  tmp: string;
  /** STRATA_STATE_DIR of the extension (and of a sidecar it starts); server.json goes here. */
  stateDir: string;
  /** The folder the window opens. */
  workspaceDir: string;
  /** The GGUF model the tests run on. */
  modelPath: string;
}

export interface WorkbenchOptions {
  /** Names the temp folder (strata-e2e-<name>-XXXXXX). */
  name: string;
  /** Files written into the workspace before code-server starts: relative path -> text. */
  files?: Record<string, string>;
  /**
   * The model llama-server runs: 'tiny' (default), the random-weight Qwen2 for tests of mechanics
   * and exact shapes (ensureTinyModel()); 'trained', the project's small coder model for what a
   * user judges (ensureTrainedModel(): plausible code, FIM that ends by itself, chat with code
   * blocks; greedy decoding makes it repeatable); or a GGUF file of the test's own.
   */
  model?: 'tiny' | 'trained' | { path: string };
  /**
   * The real llama-server on the model, announced to the extension through server.json in the
   * state dir (what `npm start` / the launcher writes). Default {} (context 2048). false: no
   * llama-server and no server.json (the extension is to start the sidecar itself).
   */
  llama?:
    | false
    | {
        ctx?: number;
        extraArgs?: string[];
        /**
         * Something between the extension and llama-server (e.g. a counting proxy): server.json names
         * its url instead; stop() closes it after code-server and before llama-server.
         */
        proxy?: (upstreamUrl: string) => Promise<{ url: string; close(): Promise<void> }>;
      };
  /** Environment of code-server and its extension host, over STRATA_STATE_DIR=<stateDir>. */
  env?: Record<string, string> | ((dirs: WorkbenchDirs) => Record<string, string>);
  /** User settings (over codeServer.ts's TEST_SETTINGS). */
  settings?: Record<string, unknown> | ((dirs: WorkbenchDirs) => Record<string, unknown> | Promise<Record<string, unknown>>);
  /** Machine settings (over codeServer.ts's TEST_MACHINE_SETTINGS): where a remote window reads machine-scoped settings. */
  machineSettings?: Record<string, unknown>;
  /** Runs once the dirs and files exist, before any server starts: more files, checks of the build. */
  prepare?: (dirs: WorkbenchDirs) => void | Promise<void>;
  /** User keybindings of code-server (keybindings.json), e.g. for commands VS Code binds to no key. */
  keybindings?: Array<{ key: string; command: string; when?: string }>;
  /** Chromium's viewport; default 1400x900. */
  viewport?: { width: number; height: number };
  /**
   * Status bar text that says the extension has activated (its item appears in the activate()
   * call that registers the inline completion provider), waited for before the tests. Default
   * /Strata/; false: not waited for (the test waits for a state of its own).
   */
  statusBar?: RegExp | false;
  /** Default 60 s. */
  statusBarTimeoutMs?: number;
  /** More texts for the failure artifacts of each failed test (e.g. a proxy's request log). */
  artifacts?: () => Record<string, string | undefined>;
  /** Keep VS Code's workspace trust on: the folder opens in Restricted Mode (default off). */
  workspaceTrust?: boolean;
}

/** Editor settings that keep the suggest widget, auto-edits and auto-closing out of typed text and of Tab. */
export const INLINE_COMPLETION_SETTINGS: Record<string, unknown> = {
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
};

const GHOST_SELECTOR = '.editor-instance .monaco-editor .ghost-text-decoration';

export class Workbench {
  private started?: {
    dirs: WorkbenchDirs;
    llama?: RunningLlamaServer;
    proxy?: { url: string; close(): Promise<void> };
    server?: RunningCodeServer;
    browser?: BrowserSession;
  };
  private readonly windows: Page[] = [];
  private readonly adopted = new Set<number>();
  private stopped?: Promise<void>;

  constructor(readonly opts: WorkbenchOptions) {}

  /** Starts everything; on a failure, stops what did start and throws. Use startWorkbench() or useWorkbench(). */
  async start(log: (line: string) => void = say): Promise<void> {
    if (this.started) throw new Error('workbench already started');
    const t0 = Date.now();
    const o = this.opts;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `strata-e2e-${o.name}-`));
    const s: NonNullable<Workbench['started']> = {
      dirs: { tmp, stateDir: path.join(tmp, 'state'), workspaceDir: path.join(tmp, 'workspace'), modelPath: '' },
    };
    this.started = s;
    try {
      ensureExtensionBuilt(log);
      s.dirs.modelPath = await resolveModel(o.model);
      const { stateDir, workspaceDir, modelPath } = s.dirs;
      // The state dir is left to whoever writes there first (server.json, the sidecar's lock), as in the product (mode 0700).
      fs.mkdirSync(workspaceDir, { recursive: true });
      for (const [rel, text] of Object.entries(o.files ?? {})) {
        fs.mkdirSync(path.dirname(path.join(workspaceDir, rel)), { recursive: true });
        fs.writeFileSync(path.join(workspaceDir, rel), text);
      }
      await o.prepare?.(s.dirs);

      const parts: string[] = [];
      if (o.llama !== false) {
        const l = o.llama ?? {};
        s.llama = await startLlamaServer({ model: modelPath, ctx: l.ctx, extraArgs: l.extraArgs });
        parts.push('llama-server');
        if (l.proxy) {
          s.proxy = await l.proxy(s.llama.url);
          parts.push('proxy');
        }
        // What `npm start` / the sidecar writes; the extension finds it through STRATA_STATE_DIR.
        writeServerConnection(
          { url: s.proxy?.url ?? s.llama.url, apiKey: s.llama.apiKey, model: modelPath, pid: s.llama.pid },
          path.join(stateDir, CONNECTION_FILE_NAME),
        );
      }
      const env = typeof o.env === 'function' ? o.env(s.dirs) : o.env;
      const settings = typeof o.settings === 'function' ? await o.settings(s.dirs) : o.settings;
      s.server = await startCodeServer({
        workspaceDir,
        extensionDevelopmentPaths: [REPO_ROOT],
        env: { STRATA_STATE_DIR: stateDir, ...(env ?? {}) },
        settings,
        keybindings: o.keybindings,
        machineSettings: o.machineSettings,
        workspaceTrust: o.workspaceTrust,
      });
      s.browser = await launchBrowser({ viewport: o.viewport });
      this.windows.push(s.browser.page);
      await openWorkbench(s.browser.page, s.server);
      parts.push('code-server', 'workbench');
      if (o.statusBar !== false) {
        await waitForStatusBarItem(s.browser.page, o.statusBar ?? /Strata/, { timeoutMs: o.statusBarTimeoutMs ?? 60_000 });
        parts.push('Strata');
      }
      log(`(${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]} up in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private need(): NonNullable<Workbench['started']> {
    if (!this.started) throw new Error('the workbench is not started (useWorkbench() starts it in a before hook)');
    return this.started;
  }

  get dirs(): WorkbenchDirs {
    return this.need().dirs;
  }
  get tmp(): string {
    return this.dirs.tmp;
  }
  get stateDir(): string {
    return this.dirs.stateDir;
  }
  get workspaceDir(): string {
    return this.dirs.workspaceDir;
  }
  get modelPath(): string {
    return this.dirs.modelPath;
  }
  /** The first window. */
  get page(): Page {
    return this.browserSession.page;
  }
  get browserSession(): BrowserSession {
    const b = this.need().browser;
    if (!b) throw new Error('the browser did not start');
    return b;
  }
  get server(): RunningCodeServer {
    const c = this.need().server;
    if (!c) throw new Error('code-server did not start');
    return c;
  }
  /** The llama-server started for the tests (throws with `llama: false`). */
  get llama(): RunningLlamaServer {
    const l = this.need().llama;
    if (!l) throw new Error('this workbench has no llama-server of its own (llama: false)');
    return l;
  }

  /** Another window (page) on the same code-server, its own extension host; waits for the workbench. */
  async openWindow(): Promise<Page> {
    const p = await this.browserSession.context.newPage();
    this.windows.push(p);
    await openWorkbench(p, this.server);
    return p;
  }

  /** Processes the tests came to know (a daemon, its llama-server): stop() kills any still alive. */
  adopt(...pids: number[]): void {
    for (const p of pids) this.adopted.add(p);
  }

  /** Absolute path of a workspace file. */
  file(rel: string): string {
    return path.join(this.workspaceDir, rel);
  }

  readFile(rel: string): string {
    return fs.readFileSync(this.file(rel), 'utf8');
  }

  /**
   * Ctrl+S in the active editor, then the file as on disk: after 300 ms, or, with `until`, as soon
   * as `until` holds for it (polled every 100 ms; what is there at `timeoutMs`, default 15 s).
   */
  async saveAndRead(rel: string, opts: { until?: (text: string) => boolean; timeoutMs?: number; page?: Page } = {}): Promise<string> {
    const page = opts.page ?? this.page;
    await page.keyboard.press('Control+S');
    if (!opts.until) {
      await page.waitForTimeout(300);
      return this.readFile(rel);
    }
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    for (;;) {
      const text = this.readFile(rel);
      if (opts.until(text) || Date.now() >= deadline) return text;
      await page.waitForTimeout(100);
    }
  }

  /** Opens a workspace file from the explorer and clicks into its text; `atEnd`: then Ctrl+End. */
  async openFile(rel: string, opts: { atEnd?: boolean; page?: Page } = {}): Promise<void> {
    const page = opts.page ?? this.page;
    await openFileFromExplorer(page, rel);
    await focusEditor(page);
    if (opts.atEnd) await page.keyboard.press('Control+End');
  }

  /** Types into the focused element, a key every `delayMs` (default 20). */
  async type(text: string, opts: { delayMs?: number; page?: Page } = {}): Promise<void> {
    await (opts.page ?? this.page).keyboard.type(text, { delay: opts.delayMs ?? 20 });
  }

  /** The ghost text decorations of the active editor. */
  ghost(page: Page = this.page): Locator {
    return page.locator(GHOST_SELECTOR);
  }

  /**
   * Waits for ghost text (default 60 s), lets the rendering settle (default 300 ms: a later
   * keystroke-free request can only replace it with the same text) and returns it (ghostText()).
   */
  async waitForGhostText(opts: { timeoutMs?: number; settleMs?: number; page?: Page } = {}): Promise<string> {
    const page = opts.page ?? this.page;
    await this.ghost(page)
      .first()
      .waitFor({ state: 'visible', timeout: opts.timeoutMs ?? 60_000 });
    await page.waitForTimeout(opts.settleMs ?? 300);
    return ghostText(page);
  }

  /** Tab, then waits (10 s) for the ghost text to go. */
  async acceptGhostText(page: Page = this.page): Promise<void> {
    await page.keyboard.press('Tab');
    await this.ghost(page).first().waitFor({ state: 'detached', timeout: 10_000 });
  }

  /**
   * Asks the sidecar daemon of the state dir (the one the extension started) for its status, as
   * one more client (it counts in `daemon.clients` while it asks). Throws when there is no lock file.
   */
  async sidecarStatus(clientName = 'e2e probe'): Promise<SidecarStatus> {
    const lock = readSidecarLock(this.stateDir);
    if (!lock) throw new Error('no sidecar lock file in the state dir: the window did not start a daemon');
    const c = new SidecarClient({ locate: async () => lock, reconnect: false, clientName });
    try {
      await c.open(10_000);
      return await c.status();
    } finally {
      c.close();
    }
  }

  /** For a mocha afterEach: saves a screenshot of the newest window and every log, if the test failed. */
  async artifactsOnFailure(ctx: Mocha.Context): Promise<void> {
    const s = this.started;
    await artifactsOnFailure(ctx, () => {
      const texts: Record<string, string | undefined> = {
        'code-server.log': s?.server?.logText(),
        'llama-server.log': s?.llama?.logText(),
        'browser-console.log': s?.browser?.consoleText(),
      };
      // The sidecar's own logs, when the extension started one.
      if (s) {
        for (const f of ['sidecar.log', 'llama-server.log']) {
          if (texts[f] !== undefined) continue;
          try {
            texts[f] = fs.readFileSync(path.join(s.dirs.stateDir, f), 'utf8');
          } catch {
            /* not written */
          }
        }
      }
      Object.assign(texts, this.opts.artifacts?.() ?? {});
      for (const [rel, text] of Object.entries(s?.server?.vscodeLogs() ?? {})) texts[`vscode-${rel}`] = text;
      return { page: this.windows[this.windows.length - 1], texts };
    });
  }

  /**
   * Closes Chromium, stops code-server, the proxy and llama-server, kills whatever a sidecar of
   * the state dir or adopt() left running, and removes the temp folder. Idempotent; never throws.
   */
  stop(): Promise<void> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<void> {
    const s = this.started;
    if (!s) return;
    const quietly = async (f: () => Promise<unknown> | unknown) => {
      try {
        await f();
      } catch (e) {
        say(`(workbench stop: ${(e as Error).message})`);
      }
    };
    await quietly(() => s.browser?.close());
    await quietly(() => s.server?.stop());
    await quietly(() => s.proxy?.close());
    await quietly(() => s.llama?.stop());
    // Whatever the tests did, nothing of theirs may survive.
    await quietly(async () => {
      const pids = [daemonPidOf(s.dirs.stateDir), ...this.adopted, ...liveChildren(s.dirs.stateDir)].filter((p): p is number => !!p && p !== process.pid);
      for (const p of pids) {
        try {
          if (isPidAlive(p)) process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await waitUntil('test processes to exit', () => pids.every((p) => !isPidAlive(p)), 5000).catch(() => undefined);
    });
    if (!process.env.STRATA_KEEP_TEST_DIRS) fs.rmSync(s.dirs.tmp, { recursive: true, force: true });
  }
}

function resolveModel(m: WorkbenchOptions['model']): Promise<string> {
  if (m === undefined || m === 'tiny') return ensureTinyModel();
  if (m === 'trained') return ensureTrainedModel();
  return Promise.resolve(m.path);
}

/** Starts a workbench (see WorkbenchOptions); stop() it when done. */
export async function startWorkbench(opts: WorkbenchOptions, log?: (line: string) => void): Promise<Workbench> {
  const wb = new Workbench(opts);
  await wb.start(log);
  return wb;
}

/**
 * For a mocha describe(): one workbench for the whole suite, started in a before hook, failure
 * artifacts after each failed test, stopped in an after hook (which mocha runs even when the
 * before hook failed). The returned object is usable from the first test on.
 */
export function useWorkbench(opts: WorkbenchOptions): Workbench {
  const wb = new Workbench(opts);
  before(async function () {
    await wb.start();
  });
  afterEach(async function () {
    await wb.artifactsOnFailure(this);
  });
  after(async function () {
    await wb.stop();
  });
  return wb;
}

function say(line: string): void {
  process.stderr.write(`      ${line}\n`);
}
