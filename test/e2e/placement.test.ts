import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { PlacementStatus, SidecarStatus } from '../../src/core/protocol';
import { SERVER_LOG_NAME } from '../../src/core/daemonClient';
import { ensureTinyModel } from '../fixtures/models';
import { waitForNotification } from '../harness/browser';
import { getLlamaBinaries } from '../harness/llamaBinaries';
import { cleanupStaleNamespaces, NetnsLab } from '../harness/netns';
import { waitUntil } from '../harness/sidecar';
import { INLINE_COMPLETION_SETTINGS, useWorkbench } from '../harness/workbench';
import { labOrSkip, RunningAgent, startAgent } from '../integration/cluster/agents';
import { answerInputBox, say, startCommand, strataStatus, waitForStatus, waitForTooltip } from '../harness/strataUi';
import { linuxOnly } from '../harness/skips';

// Placement mode as a user sets it up, end to end and nothing faked: code-server (VS Code 1.100)
// with the Strata extension from dist/, whose own sidecar daemon runs the real llama-server on the
// tiny model for this machine; one peer as a network-namespace host running the real strata-peer
// agent with --models-dir, a folder holding a copy of the tiny model as coder.gguf. The user
// settings name the placement (`strata.cluster.placement`: completions on box2 with coder.gguf)
// before the peer exists; Chromium adds the peer through the palette, and the daemon starts a
// whole llama-server for completions on the peer, reached through a loopback tunnel. The status
// bar tooltip says "Completions: coder.gguf on box2", and ghost text comes from the peer's
// llama-server: its log (in the agent's state dir) gains the completion tasks while the local
// llama-server's log gains none. Then the peer box dies (every process in its namespace
// killed): the placement goes down within 30 s, the local llama-server keeps running (no
// restart), and ghost text for a new prompt comes from it.
//
// Who answered: each llama-server logs a line per task it runs ("slot launch_slot_: ... | task N |
// processing task"); completions are the only tasks in this test (no chat), so the counts on each
// side say where they went. (This llama.cpp logs no per-request lines: its HTTP logger is off.)

const PEER = 'box2';
const PLACED_MODEL = 'coder.gguf';
const PLACED_ARGS = ['-c', '512', '-t', '1', '--no-repack'];
const FILE_PEER = 'strutils.py';
const INITIAL_PEER = '"""String helpers."""\n\n\ndef shout(s):\n    return s.upper()\n\n\ndef whisper(s):\n    ';
// A different file and prompt after the peer is gone: nothing the completion cache holds can answer it.
const FILE_LOCAL = 'listutils.py';
const INITIAL_LOCAL = '"""List helpers."""\n\n\ndef first(xs):\n    return xs[0]\n\n\ndef last(xs):\n    ';
const TYPED = 'return ';
const PLACED_LOG_NAME = 'llama-server-fim.log';

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Tasks (here: /infill completions) a llama-server started, from its log. */
function tasksIn(logText: string): number {
  return (logText.match(/\| task \d+ \| processing task\b/g) ?? []).length;
}

describe('E2E: completions placed on a peer (placement mode), the peer dies and completions fall back here', function () {
  this.timeout(300_000);
  linuxOnly('peers run in network namespaces');

  let lab: NetnsLab | undefined;
  let agent: RunningAgent | undefined;
  let modelsDir: string | undefined;
  let label = '';
  /** The local llama-server's pid once loaded: neither the placement nor the fallback restarts it. */
  let localPid: number | undefined;

  const peerLog = (): string => (agent ? readOr(path.join(agent.stateDir, PLACED_LOG_NAME)) : '');
  const localLog = (): string => readOr(path.join(wb.stateDir, SERVER_LOG_NAME));
  const fimPlacement = (st: SidecarStatus): PlacementStatus | undefined => st.cluster?.placements.find((p) => p.role === 'fim');

  // Before the workbench's own hook: without namespaces the whole suite is skipped with the reason, and nothing starts.
  before(async function () {
    this.timeout(120_000);
    lab = await labOrSkip(this);
    await cleanupStaleNamespaces();
    // The peer's models folder: a copy of the tiny model under another name (the agent refuses links out of its folder).
    modelsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-peer-models-'));
    fs.copyFileSync(await ensureTinyModel(), path.join(modelsDir, PLACED_MODEL));
    const [host] = await lab.addHosts([{}]);
    agent = await startAgent(host, { extra: ['--models-dir', modelsDir] });
    say(`peer agent in ${host.ns} on ${host.addr}:${agent.port}, models from ${modelsDir}`);
  });

  const wb = useWorkbench({
    name: 'placement',
    llama: false,
    files: { [FILE_PEER]: INITIAL_PEER, [FILE_LOCAL]: INITIAL_LOCAL },
    env: { STRATA_SIDECAR_CONFIG: JSON.stringify({ stopGraceMs: 3000 }) },
    settings: async (dirs) => ({
      ...INLINE_COMPLETION_SETTINGS,
      'strata.model.path': dirs.modelPath,
      'strata.server.path': (await getLlamaBinaries()).serverPath,
      // Random weights: --no-repack (DESIGN.md); 2 cores.
      'strata.server.extraArgs': ['--no-repack', '-t', '2', '--no-webui'],
      'strata.completion.debounceMs': 50,
      'strata.completion.maxTokens': 16,
      // What the user writes in settings.json; it names a peer that is added later from the palette.
      'strata.cluster.placement': { fim: { peer: PEER, model: PLACED_MODEL, args: PLACED_ARGS } },
    }),
    artifacts: () => ({ 'strata-peer.log': agent?.logText(), [`peer-${PLACED_LOG_NAME}`]: peerLog() }),
  });

  after(async function () {
    this.timeout(60_000);
    await wb.stop();
    await lab?.cleanup();
    if (agent) fs.rmSync(agent.stateDir, { recursive: true, force: true });
    if (modelsDir) fs.rmSync(modelsDir, { recursive: true, force: true });
  });

  it('the window loads the model here; the placement waits for its peer to be added', async () => {
    label = path.basename(wb.modelPath, '.gguf').slice(0, 20);
    await waitForStatus(wb.page, 'the model ready', (t) => t.includes(`Strata · ${label}`), 120_000);
    const st = await wb.sidecarStatus('e2e placement probe');
    assert.strictEqual(st.server.phase, 'ready');
    localPid = st.server.pid;
    assert.ok(localPid, 'the local llama-server has no pid');
    // No peer with a token yet: the daemon has no cluster, and nothing started on the peer.
    assert.strictEqual(st.cluster, undefined, JSON.stringify(st.cluster));
    assert.strictEqual(peerLog(), '', 'a llama-server started on the peer before it was added');
  });

  it('"Strata: Add Peer" adds box2 and the daemon starts coder.gguf there for completions, behind a loopback tunnel', async () => {
    const page = wb.page;
    const t0 = Date.now();
    await startCommand(page, 'Strata: Add Peer');
    await answerInputBox(page, 'Strata: Add Peer (1/3)', `${agent!.host.addr}:${agent!.port}`);
    await answerInputBox(page, 'Strata: Add Peer (2/3)', PEER);
    await answerInputBox(page, 'Strata: Add Peer (3/3)', agent!.token);
    await waitForNotification(page, new RegExp(`Strata: ${PEER} added`), { timeoutMs: 30_000 });

    let st: SidecarStatus | undefined;
    let seen = '';
    await waitUntil(
      'the fim placement to be ready in the daemon status',
      async () => {
        st = await wb.sidecarStatus('e2e placement probe');
        const p = fimPlacement(st);
        if (p && p.phase !== 'starting' && p.phase !== 'ready') throw new Error(`the placement is ${p.phase}: ${p.error ?? ''}`);
        seen = p?.phase ?? 'absent';
        return p?.phase === 'ready';
      },
      120_000,
      250,
    ).catch((e: Error) => {
      throw new Error(`${e.message} (last phase: ${seen}; peer log tail: ${peerLog().slice(-600)})`);
    });
    const p = fimPlacement(st!)!;
    say(`placement ready ${((Date.now() - t0) / 1000).toFixed(1)} s after the palette was opened: ${p.model} on ${p.peer} at ${p.url}`);
    assert.strictEqual(p.peer, PEER);
    assert.strictEqual(p.model, PLACED_MODEL);
    assert.match(p.url ?? '', /^http:\/\/127\.0\.0\.1:\d+$/, 'the placed server is reached through a loopback tunnel endpoint on this machine');
    assert.deepStrictEqual(st!.cluster?.peers, { up: 1, total: 1 });
    // Placement is not a split: the local model runs here alone, the same process as before.
    assert.strictEqual(st!.cluster?.split, undefined, JSON.stringify(st!.cluster));
    assert.strictEqual(st!.server.phase, 'ready');
    assert.strictEqual(st!.server.pid, localPid, 'the local llama-server was restarted by the placement');

    // On the peer: a llama-server on the copy in the models folder, with the flags from the setting.
    const header =
      peerLog()
        .split('\n')
        .find((l) => l.startsWith('=== ')) ?? '';
    assert.ok(
      header.includes(`-m ${path.join(fs.realpathSync(modelsDir!), PLACED_MODEL)} `),
      `placed llama-server header: ${header.replace(/--api-key \S+/, '--api-key ***')}`,
    );
    assert.ok(header.includes(PLACED_ARGS.join(' ')), `placed llama-server header: ${header.replace(/--api-key \S+/, '--api-key ***')}`);
    assert.match(agent!.logText(), /placement: role fim ready/);
  });

  it('the status bar tooltip says completions are served on box2', async () => {
    const page = wb.page;
    // The "added" toast sits over the status bar's right end.
    await page
      .locator('.notifications-toasts .notification-toast .codicon-notifications-clear')
      .first()
      .click({ timeout: 2000 })
      .catch(() => undefined);
    const tip = await waitForTooltip(
      page,
      `"Completions: ${PLACED_MODEL} on ${PEER}"`,
      (t) => t.includes(`Completions: ${PLACED_MODEL} on ${PEER}`) && !t.includes(`on ${PEER}: `),
      30_000,
    );
    say(`tooltip: …${tip.slice(tip.indexOf('Completions:'))}`);
    assert.ok(!/Chat: /.test(tip), `chat is not placed, yet the tooltip says: ${tip}`);
    assert.match(tip, /Peers: 1 of 1 reachable/, tip);
    const text = await strataStatus(page);
    assert.ok(text.includes(`Strata · ${label}`) && !/\+\d+ peer/.test(text), `status bar: ${text}`);
  });

  it('ghost text comes from the llama-server on the peer, not from the one here', async () => {
    const peerBefore = tasksIn(peerLog());
    const localBefore = tasksIn(localLog());
    await wb.openFile(FILE_PEER, { atEnd: true });
    await wb.type(TYPED);
    const t0 = Date.now();
    const shown = await wb.waitForGhostText({ timeoutMs: 60_000 });
    say(`ghost text ${Date.now() - t0} ms after the last keystroke: ${JSON.stringify(shown)}`);
    assert.ok(shown.trim().length > 0, 'ghost text element is empty');
    // The peer's llama-server ran the completion (its log may trail the answer by a moment).
    await waitUntil("the peer's llama-server to log the completion it ran", () => tasksIn(peerLog()) > peerBefore, 10_000, 100).catch(() => {
      throw new Error(
        `no new task in the peer's ${PLACED_LOG_NAME} (${peerBefore} before, ${tasksIn(peerLog())} now); the local llama-server logged ${tasksIn(localLog()) - localBefore} new ones`,
      );
    });
    const peerAfter = tasksIn(peerLog());
    const localAfter = tasksIn(localLog());
    say(`completion tasks: ${peerAfter - peerBefore} on the peer's llama-server, ${localAfter - localBefore} on the one here`);
    assert.strictEqual(localAfter, localBefore, 'the local llama-server ran completions while they are placed on the peer');
    const st = await wb.sidecarStatus('e2e placement probe');
    assert.strictEqual(fimPlacement(st)?.phase, 'ready');
    assert.strictEqual(st.server.pid, localPid);
    await wb.page.keyboard.press('Escape');
  });

  it('the peer box dies: the placement goes down within 30 s, and ghost text for a new prompt comes from the llama-server here', async () => {
    const page = wb.page;
    const t0 = Date.now();
    await agent!.host.killAll();
    const peerAtKill = tasksIn(peerLog());

    let p: PlacementStatus | undefined;
    await waitUntil(
      'the fim placement to be down in the daemon status',
      async () => {
        p = fimPlacement(await wb.sidecarStatus('e2e placement probe'));
        return p?.phase === 'down';
      },
      30_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; it is ${JSON.stringify(p && { ...p, apiKey: undefined })}`);
    });
    say(`placement down ${((Date.now() - t0) / 1000).toFixed(1)} s after the peer was killed: ${p!.error}`);
    assert.strictEqual(p!.url, undefined, 'a placement that is down still offers its tunnel endpoint');
    assert.match(p!.error ?? '', /the local server answers completions meanwhile/, p!.error);
    // The window heard it (the tooltip is rendered from the same status that routes completions).
    const tip = await waitForTooltip(page, 'the placement down', (t) => t.includes(`Completions: ${PLACED_MODEL} on ${PEER}: down`), 15_000);
    say(`tooltip: …${tip.slice(tip.indexOf('Completions:'))}`);
    assert.match(tip, /Peers: 0 of 1 reachable/, tip);

    // The local model kept running all along: nothing to reload, completions fall back at once.
    const st = await wb.sidecarStatus('e2e placement probe');
    assert.strictEqual(st.server.phase, 'ready');
    assert.strictEqual(st.server.pid, localPid, 'the local llama-server was restarted when the peer went away');
    assert.ok((await strataStatus(page)).includes(`Strata · ${label}`));

    const localBefore = tasksIn(localLog());
    await wb.openFile(FILE_LOCAL, { atEnd: true });
    await wb.type(TYPED);
    const t1 = Date.now();
    const shown = await wb.waitForGhostText({ timeoutMs: 60_000 });
    say(`ghost text ${Date.now() - t1} ms after the last keystroke (${((Date.now() - t0) / 1000).toFixed(1)} s after the kill): ${JSON.stringify(shown)}`);
    assert.ok(shown.trim().length > 0, 'ghost text element is empty');
    await waitUntil('the local llama-server to log the completion it ran', () => tasksIn(localLog()) > localBefore, 10_000, 100).catch(() => {
      throw new Error(`no new task in the local ${SERVER_LOG_NAME} (${localBefore} before and now)`);
    });
    say(`completion tasks here after the fallback: ${tasksIn(localLog()) - localBefore}`);
    assert.strictEqual(tasksIn(peerLog()), peerAtKill, "the peer's log grew after it was killed");
    assert.strictEqual((await wb.sidecarStatus('e2e placement probe')).server.pid, localPid, 'the local llama-server restarted while completing');
  });
});
