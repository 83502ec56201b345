import * as assert from 'assert';
import * as vscode from 'vscode';

// The Strata extension as VS Code sees it: found, activated, its commands and settings real.

const EXTENSION_ID = 'strata.strata-coder';

interface ContributedCommand {
  command: string;
  title: string;
  category?: string;
}

interface StrataApi {
  statusBarText(): string;
}

function strata(): vscode.Extension<StrataApi> {
  const ext = vscode.extensions.getExtension<StrataApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not installed in this extension host`);
  return ext;
}

describe('Strata extension in a real extension host', () => {
  it('is present', () => {
    const ext = strata();
    assert.strictEqual(ext.packageJSON.publisher, 'strata');
    assert.strictEqual(ext.packageJSON.name, 'strata-coder');
    assert.strictEqual(ext.extensionKind, vscode.ExtensionKind.Workspace);
  });

  it('activates: returns its API, and its status bar says that no model is set', async () => {
    const ext = strata();
    const api = await ext.activate();
    assert.strictEqual(ext.isActive, true);
    assert.ok(api && typeof api.statusBarText === 'function', 'activate() returned no API');
    assert.strictEqual(api, ext.exports);
    // The runner configures no model: Strata's own answer to that, not VS Code's.
    assert.strictEqual(api.statusBarText(), '$(circle-slash) Strata: no model');
  });

  it('registers strata.showServerStatus and strata.toggleCompletions', async () => {
    await strata().activate();
    const all = new Set(await vscode.commands.getCommands(true));
    for (const id of ['strata.showServerStatus', 'strata.toggleCompletions']) {
      assert.ok(all.has(id), `command ${id} is not registered`);
    }
  });

  it('registers every command its package.json contributes, under category "Strata"', async () => {
    const ext = strata();
    await ext.activate();
    const contributed = (ext.packageJSON.contributes?.commands ?? []) as ContributedCommand[];
    assert.ok(contributed.length > 0, 'package.json contributes no commands');
    const all = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((c) => !all.has(c.command)).map((c) => c.command);
    assert.deepStrictEqual(missing, [], `contributed but not registered: ${missing.join(', ')}`);
    const wrong = contributed.filter((c) => !c.command.startsWith('strata.') || c.category !== 'Strata').map((c) => c.command);
    assert.deepStrictEqual(wrong, [], `commands outside strata.* or category "Strata": ${wrong.join(', ')}`);
  });

  describe('setting strata.completion.enabled', function () {
    // A model is set and autoStart is off, so the status bar reads "Strata: stopped" (no sidecar
    // starts) and shows whether completions are on: Strata's own reaction to the setting.
    this.timeout(120_000);
    const cfg = () => vscode.workspace.getConfiguration('strata');
    const statusBar = () => strata().exports.statusBarText();
    before(async () => {
      await strata().activate();
      const { ensureTinyModel } = await import('../../fixtures/models');
      await cfg().update('server.autoStart', false, vscode.ConfigurationTarget.Global);
      await cfg().update('model.path', await ensureTinyModel(), vscode.ConfigurationTarget.Global);
      await waitFor(
        () => /Strata: stopped$/.test(statusBar()),
        10_000,
        () => statusBar(),
      );
    });
    afterEach(async () => {
      await cfg().update('completion.enabled', undefined, vscode.ConfigurationTarget.Global);
    });
    after(async () => {
      await cfg().update('model.path', undefined, vscode.ConfigurationTarget.Global);
      await cfg().update('server.autoStart', undefined, vscode.ConfigurationTarget.Global);
      await waitFor(
        () => /no model/.test(statusBar()),
        10_000,
        () => statusBar(),
      );
    });

    it('defaults to on, and the status bar does not say "(off)"', () => {
      const info = cfg().inspect<boolean>('completion.enabled');
      assert.ok(info, 'strata.completion.enabled is not a contributed setting');
      assert.strictEqual(info.defaultValue, true);
      assert.strictEqual(info.globalValue, undefined, 'the test profile should not set it');
      assert.strictEqual(statusBar(), '$(debug-stop) Strata: stopped');
    });

    it('turned off in the settings, Strata shows completions off; turned on, on again', async () => {
      await cfg().update('completion.enabled', false, vscode.ConfigurationTarget.Global);
      await waitFor(() => statusBar() === '$(debug-stop) Strata: stopped (off)', 5000, statusBar);
      await cfg().update('completion.enabled', true, vscode.ConfigurationTarget.Global);
      await waitFor(() => statusBar() === '$(debug-stop) Strata: stopped', 5000, statusBar);
    });

    it('is flipped by the command strata.toggleCompletions, and the status bar follows', async () => {
      assert.strictEqual(cfg().get<boolean>('completion.enabled'), true);
      assert.strictEqual(await vscode.commands.executeCommand('strata.toggleCompletions'), false);
      assert.strictEqual(cfg().get('completion.enabled'), false);
      assert.strictEqual(statusBar(), '$(debug-stop) Strata: stopped (off)');
      assert.strictEqual(await vscode.commands.executeCommand('strata.toggleCompletions'), true);
      assert.strictEqual(cfg().get('completion.enabled'), true);
      assert.strictEqual(statusBar(), '$(debug-stop) Strata: stopped');
    });
  });
});

async function waitFor(check: () => boolean, ms: number, seen: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms; the status bar says "${seen()}"`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
