// Runs `npm start` and shows that what it opens works end to end, for machines without a screen
// (scripts/bare-debian-check.sh, CI): `npm start` keeps running and, on a machine without desktop
// `code`, serves code-server, whose extension host (and so the model load) starts only when a
// browser opens the page. This opens the printed URL in headless Chromium, opens fib.py, asks for a
// completion on its last line (Alt+\, then typing) and waits for ghost text (a screenshot and the
// logs go under .test-artifacts/start-check-*); then Ctrl+C (SIGINT) to `npm start`, after which
// code-server, the sidecar and llama-server must be gone within 30 s. Exit status 0 when all of that happened.
//
// Usage: npx tsx scripts/start-check.ts   (after `npm install`; needs chromium, which `npm test`'s
// prerequisites install). STRATA_START_CHECK_TIMEOUT_S bounds the whole check (default 3600: a cold
// `npm start` builds llama.cpp and installs code-server first).
import { spawn } from 'child_process';
import * as path from 'path';
import { focusEditor, ghostText, launchBrowser, openFileFromExplorer, saveArtifacts, visibleEditorText, waitForWorkbench } from '../test/harness/browser';

const root = path.resolve(__dirname, '..');
const say = (m: string): void => void process.stdout.write(`[start-check] ${m}\n`);

async function main(): Promise<number> {
  const t0 = Date.now();
  const limitMs = Number(process.env.STRATA_START_CHECK_TIMEOUT_S ?? 3600) * 1000;
  // npm start in its own process group, so that Ctrl+C reaches it as it would from a terminal.
  const start = spawn('npm', ['start'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const exited = new Promise<string>((resolve) => start.on('exit', (code, signal) => resolve(signal ?? String(code))));
  for (const s of [start.stdout, start.stderr]) {
    s.on('data', (b: Buffer) => {
      out += b.toString();
      process.stdout.write(b);
    });
  }
  const waitFor = async (re: RegExp, what: string): Promise<RegExpMatchArray> => {
    for (;;) {
      const m = out.match(re);
      if (m) return m;
      if (start.exitCode !== null) throw new Error(`npm start exited (${start.exitCode}) before ${what}`);
      if (Date.now() - t0 > limitMs) throw new Error(`no ${what} within ${limitMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  // On a failure, what npm start left is stopped (its group; the sidecar stops itself without clients).
  const stopGroup = (): void => {
    if (alive(-start.pid!)) process.kill(-start.pid!, 'SIGTERM');
  };
  process.on('exit', stopGroup);
  const browser = await (async () => {
    const url = (await waitFor(/Open (http:\/\/\S+) in a browser/, 'code-server URL'))[1];
    say(`npm start is ready after ${((Date.now() - t0) / 1000).toFixed(0)} s; opening ${url} in headless Chromium`);
    const b = await launchBrowser();
    await b.page.goto(url, { waitUntil: 'domcontentloaded', timeout: 90_000 });
    await waitForWorkbench(b.page, { timeoutMs: 120_000 });
    await openFileFromExplorer(b.page, 'fib.py');
    return b;
  })();
  try {
    await waitFor(/llama-server ready at/, 'llama-server ready line (the window asks the sidecar for the model)');
    await focusEditor(browser.page);
    // The cursor after "    return " on the last line; Alt+\ asks for an inline completion there,
    // then typing does (a suggestion the model ends at once shows nothing, so ask again).
    await browser.page.keyboard.press('Control+End');
    await browser.page.keyboard.press('ArrowUp');
    await browser.page.keyboard.press('End');
    const askedAt = Date.now();
    let ghost = '';
    for (const gesture of ['Alt+Backslash', 'type fib', 'Alt+Backslash', 'type (', 'Alt+Backslash']) {
      if (gesture.startsWith('type ')) await browser.page.keyboard.type(gesture.slice(5), { delay: 50 });
      else await browser.page.keyboard.press(gesture);
      const until = Date.now() + 30_000;
      while (!ghost.trim() && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 250));
        ghost = await ghostText(browser.page);
      }
      if (ghost.trim()) {
        say(`ghost text ${Date.now() - askedAt} ms after the first request (${gesture}): ${JSON.stringify(ghost)}`);
        break;
      }
    }
    const editor = await visibleEditorText(browser.page);
    const dir = await saveArtifacts('start-check', {
      page: browser.page,
      texts: { 'editor.txt': editor, 'console.txt': browser.consoleText(), 'npm-start.log': out },
    });
    say(`screenshot and logs: ${dir}`);
    if (!ghost.trim())
      throw new Error(`no ghost text in fib.py within ${((Date.now() - askedAt) / 1000).toFixed(0)} s of asking; the editor shows:\n${editor}`);
  } finally {
    await browser.close();
  }
  const sidecarPid = Number(out.match(/sidecar pid (\d+)/)?.[1]);
  const serverPid = Number(out.match(/llama-server ready at \S+ \(pid (\d+)\)/)?.[1]);
  const codeServerPid = Number(out.match(/code-server pid (\d+)/)?.[1]);
  say(`Ctrl+C to npm start (code-server pid ${codeServerPid}, sidecar pid ${sidecarPid}, llama-server pid ${serverPid})`);
  process.kill(-start.pid!, 'SIGINT');
  // From a terminal, npm itself dies of the SIGINT (the shell shows 130); start.ts exits 0.
  const how = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 60_000))]);
  if (!['0', '130', 'SIGINT'].includes(how)) throw new Error(`npm start ended with ${how} after Ctrl+C`);
  const left = async (): Promise<string[]> => {
    const until = Date.now() + 30_000;
    let names: string[] = [];
    do {
      await new Promise((r) => setTimeout(r, 500));
      names = [
        alive(-start.pid!) && `npm start's process group ${start.pid}`,
        codeServerPid && alive(codeServerPid) && `code-server (pid ${codeServerPid})`,
        sidecarPid && alive(sidecarPid) && `the sidecar (pid ${sidecarPid})`,
        serverPid && alive(serverPid) && `llama-server (pid ${serverPid})`,
      ].filter((n): n is string => !!n);
    } while (names.length && Date.now() < until);
    return names;
  };
  const remaining = await left();
  if (remaining.length) throw new Error(`after Ctrl+C, still running 30 s later: ${remaining.join(', ')}`);
  say(`npm start stopped (${how}) with code-server, the sidecar and llama-server; end to end in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`[start-check] FAILED: ${e.message}\n`);
    process.exit(1);
  },
);
