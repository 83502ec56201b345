import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { RESTRICTED_SETTINGS } from '../../../src/core/workspaceTrust';
import { chatSettings } from '../../../src/vscode/chat/settings';
import { readPeerSettings, readPlacements } from '../../../src/vscode/cluster';
import { readModelsConfig } from '../../../src/vscode/models/settings';
import { connectionFileSetting } from '../../../src/vscode/settings';
import { readServerSettings } from '../../../src/vscode/serverControl/settings';
import { strataSettings } from '../../../src/vscode/workspaceTrust';
import { attackMarker, evilServerPath, removeHostileWorkspace, writeHostileWorkspace } from '../hostileWorkspace';

// Workspace trust (issue 13) in a real extension host. The workspace is a cloned repository whose
// `.vscode/settings.json` sets every restricted Strata setting (../hostileWorkspace.ts), with
// `strata.server.path` naming a script of the repository that leaves a marker when it runs.
//   npm run test:exthost -- --untrusted   the runner writes that folder and VS Code opens it in
//     Restricted Mode: each workspace value is ignored, the script never runs, Strata says once
//     which settings it held back; then the suite opens the Workspace Trust editor, the runner
//     clicks "Trust" as a person would, and the same settings apply (the script runs).
//   npm run test:exthost                  trust off (a trusted folder): the suite writes the same
//     settings itself and each applies, except the machine-scoped ones VS Code never takes from
//     a workspace.

interface StrataApi {
  workspaceSettingsHeldBack(): Promise<string[]>;
}

const ws = vscode.workspace.workspaceFolders![0].uri.fsPath;
/** Every hostile value names the run's temp folder, the unreachable port 9, or "evil"/"backdoor". */
const hostile = (v: unknown): boolean => [path.dirname(ws), '127.0.0.1:9', 'evil', 'backdoor'].some((s) => JSON.stringify(v ?? null).includes(s));

/** What Strata's own readers make of each restricted setting (the code paths the product uses). */
const READERS: Record<(typeof RESTRICTED_SETTINGS)[number], () => unknown> = {
  'strata.server.path': () => readServerSettings({}).serverPath,
  'strata.model.path': () => readServerSettings({}).modelPath,
  'strata.server.extraArgs': () => readServerSettings({}).extraArgs,
  'strata.server.releaseUrl': () => readServerSettings({}).releaseUrl,
  'strata.server.connectionFile': () => connectionFileSetting(),
  'strata.models.directories': () => readModelsConfig().directories,
  'strata.models.downloadDirectory': () => readModelsConfig().downloadDir,
  'strata.models.hubEndpoint': () => readModelsConfig().hubEndpoint,
  'strata.models.custom': () => readModelsConfig().custom,
  'strata.models.draft': () => strataSettings('strata.models').get('draft', ''),
  'strata.cluster.peers': () => readPeerSettings(),
  'strata.cluster.placement': () => readPlacements(),
  'strata.chat.systemPrompt': () => chatSettings().systemPrompt,
};
/** Machine-scoped: VS Code takes them from user settings only, trusted or not. */
const MACHINE_SCOPED = new Set(['strata.cluster.peers', 'strata.cluster.placement']);
/** The user's own values: these apply in Restricted Mode (the other restricted settings fall back to their defaults). */
const USER: Record<string, unknown> = {
  'strata.chat.systemPrompt': 'Answer briefly.',
  'strata.models.hubEndpoint': 'https://hf-mirror.example',
};

function split(key: string): [string, string] {
  const i = key.lastIndexOf('.');
  return [key.slice(0, i), key.slice(i + 1)];
}

async function waitFor(what: string, pred: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The workspace's settings file is read (its one unrestricted setting shows through). */
const workspaceSettingsRead = () => vscode.workspace.getConfiguration('strata').get('completion.debounceMs') === 777;

/** Makes the window re-plan (a server setting changed), which resolves and inspects llama-server again. */
async function replan(): Promise<void> {
  const cfg = vscode.workspace.getConfiguration('strata');
  await cfg.update('server.contextSize', 4096 + Math.floor(Math.random() * 1000), vscode.ConfigurationTarget.Global);
}

function assertReaders(expectHostile: (key: string) => boolean): void {
  assert.deepStrictEqual(Object.keys(READERS).sort(), [...RESTRICTED_SETTINGS].sort(), 'every restricted setting has a reader here');
  for (const [key, read] of Object.entries(READERS)) {
    const v = read();
    assert.strictEqual(hostile(v), expectHostile(key), `${key}: Strata read ${JSON.stringify(v)}`);
    if (!expectHostile(key) && key in USER) assert.strictEqual(JSON.stringify(v), JSON.stringify(USER[key]), `${key}: the user's own value applies`);
  }
}

describe("Workspace trust: a repository's settings wait until the workspace is trusted", function () {
  this.timeout(90_000);
  const trustedAtStart = vscode.workspace.isTrusted;

  before(async () => {
    await vscode.extensions.getExtension('strata.strata-coder')!.activate();
    for (const [k, v] of Object.entries(USER)) {
      const [section, key] = split(k);
      await vscode.workspace.getConfiguration(section).update(key, v, vscode.ConfigurationTarget.Global);
    }
    if (trustedAtStart) writeHostileWorkspace(ws);
    await waitFor('the workspace settings file to be read', workspaceSettingsRead, 20_000);
  });

  after(async () => {
    for (const k of [...Object.keys(USER), 'strata.server.contextSize']) {
      const [section, key] = split(k);
      await vscode.workspace.getConfiguration(section).update(key, undefined, vscode.ConfigurationTarget.Global);
    }
    removeHostileWorkspace(ws);
    await waitFor('the workspace settings to go', () => !workspaceSettingsRead(), 20_000).catch(() => undefined);
  });

  (trustedAtStart ? it.skip : it)("Restricted Mode: each workspace value is ignored by VS Code and by Strata, and the user's own applies", async () => {
    assert.strictEqual(vscode.workspace.isTrusted, false);
    for (const key of RESTRICTED_SETTINGS) {
      const [section, k] = split(key);
      const seen = vscode.workspace.getConfiguration(section).get(k);
      assert.ok(
        !hostile(seen),
        `VS Code handed the extension the workspace's ${key} (${JSON.stringify(seen)}): is it in package.json's restrictedConfigurations?`,
      );
    }
    assertReaders(() => false);
  });

  (trustedAtStart ? it.skip : it)(
    "Restricted Mode: the repository's strata.server.path script never runs, and Strata still resolves its own llama-server",
    async () => {
      await replan();
      await new Promise((r) => setTimeout(r, 3000));
      const report = await vscode.commands.executeCommand<{ sidecar?: { binary?: { path: string } } }>('strata.showServerStatus');
      assert.notStrictEqual(report.sidecar?.binary?.path, evilServerPath(ws));
      assert.ok(
        !fs.existsSync(attackMarker(ws)),
        `the workspace's script ran: ${fs.existsSync(attackMarker(ws)) ? fs.readFileSync(attackMarker(ws), 'utf8') : ''}`,
      );
    },
  );

  (trustedAtStart ? it.skip : it)('Restricted Mode: Strata names the settings it held back', async () => {
    const api = vscode.extensions.getExtension<StrataApi>('strata.strata-coder')!.exports;
    assert.deepStrictEqual(await api.workspaceSettingsHeldBack(), [...RESTRICTED_SETTINGS]);
  });

  (trustedAtStart ? it.skip : it)('trusting the workspace (the Workspace Trust editor\'s "Trust" button) applies its settings: the script runs', async () => {
    const granted = new Promise<void>((resolve) => vscode.workspace.onDidGrantWorkspaceTrust(() => resolve()));
    await vscode.commands.executeCommand('workbench.trust.manage');
    await Promise.race([granted, new Promise((_, reject) => setTimeout(() => reject(new Error('the runner did not click "Trust" within 30 s')), 30_000))]);
    assert.strictEqual(vscode.workspace.isTrusted, true);
    await waitFor("the workspace's script to run once trusted", () => fs.existsSync(attackMarker(ws)), 20_000);
    assertReaders((key) => !MACHINE_SCOPED.has(key));
  });

  (trustedAtStart ? it : it.skip)("a trusted workspace's values apply (machine-scoped ones excepted), its script included", async () => {
    assertReaders((key) => !MACHINE_SCOPED.has(key));
    await replan();
    await waitFor("the workspace's script to run", () => fs.existsSync(attackMarker(ws)), 20_000);
    const api = vscode.extensions.getExtension<StrataApi>('strata.strata-coder')!.exports;
    assert.deepStrictEqual(await api.workspaceSettingsHeldBack(), []);
  });
});
