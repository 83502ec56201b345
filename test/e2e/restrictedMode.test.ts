import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { waitForNotification, waitForStatusBarItem } from '../harness/browser';
import { attackMarker, writeHostileWorkspace } from '../exthost/hostileWorkspace';
import { getLlamaBinaries } from '../harness/llamaBinaries';
import { INLINE_COMPLETION_SETTINGS, useWorkbench } from '../harness/workbench';

// Strata in Restricted Mode, as a user meets it (issue 13): the user's own settings name the
// model and llama-server; the window opens a freshly cloned repository, untrusted, whose
// `.vscode/settings.json` sets every restricted Strata setting and points `strata.server.path` at
// a script of its own (test/exthost/hostileWorkspace.ts). Strata starts the user's llama-server
// through the sidecar and gives ghost text; the repository's script never runs, its llama-server
// flags (`--log-file`) never reach llama-server, and one notice names what was held back.

const FILE = 'mathutils.py';
const INITIAL = '"""Small arithmetic helpers."""\n\n\ndef add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    ';
const USER_ARGS = ['--no-repack', '-t', '2', '--no-webui'];

describe('E2E: Restricted Mode: a cloned repository cannot run its own llama-server, and completions still work', function () {
  this.timeout(300_000);
  if (process.platform !== 'linux') return;

  let serverPath = '';
  const wb = useWorkbench({
    name: 'restricted',
    files: { [FILE]: INITIAL },
    llama: false,
    workspaceTrust: true,
    prepare: (d) => writeHostileWorkspace(d.workspaceDir),
    env: { STRATA_SIDECAR_CONFIG: JSON.stringify({ idleExitMs: 4000, stopGraceMs: 3000 }) },
    settings: async (d) => {
      serverPath = (await getLlamaBinaries()).serverPath;
      return {
        ...INLINE_COMPLETION_SETTINGS,
        'strata.model.path': d.modelPath,
        'strata.server.path': serverPath,
        'strata.server.extraArgs': USER_ARGS,
        'strata.server.contextSize': 2048,
        'strata.completion.debounceMs': 50,
        'strata.completion.maxTokens': 16,
      };
    },
    statusBar: false,
  });

  it("loads the user's model on the user's llama-server, with the user's flags", async () => {
    const label = path.basename(wb.modelPath, '.gguf');
    await waitForStatusBarItem(wb.page, new RegExp(`Strata · ${label.slice(0, 20)}`), { timeoutMs: 120_000 });
    const st = await wb.sidecarStatus();
    wb.adopt(st.daemon.pid, ...(st.server.pid ? [st.server.pid] : []));
    assert.strictEqual(st.server.phase, 'ready');
    assert.strictEqual(st.server.plan?.binaryPath, serverPath);
    assert.strictEqual(st.server.plan?.modelPath, wb.modelPath);
    assert.deepStrictEqual(st.server.plan?.args.slice(-USER_ARGS.length), USER_ARGS);
    assert.ok(!st.server.plan?.args.includes('--log-file'), `the workspace's flags reached llama-server: ${st.server.plan?.args.join(' ')}`);
  });

  it('gives ghost text in Restricted Mode', async () => {
    await wb.openFile(FILE, { atEnd: true });
    await wb.type('return ');
    const shown = await wb.waitForGhostText();
    assert.ok(shown.trim().length > 0, 'ghost text element is empty');
  });

  it('says once which workspace settings it ignores', async () => {
    const text = await waitForNotification(wb.page, /Restricted Mode: Strata ignores this workspace's/, { timeoutMs: 20_000 });
    assert.match(text, /strata\.server\.path, strata\.model\.path, strata\.server\.extraArgs/);
    assert.match(text, /trust the workspace to apply them/);
  });

  it("never ran the repository's script, and nothing was written where the repository asked", () => {
    const marker = attackMarker(wb.workspaceDir);
    assert.ok(!fs.existsSync(marker), `the repository's script ran: ${fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : ''}`);
    assert.ok(!fs.existsSync(path.join(wb.tmp, 'written-by-workspace')), 'llama-server wrote the log file the repository named');
  });
});
