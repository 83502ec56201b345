import * as assert from 'assert';
import * as vscode from 'vscode';

// The Strata extension as VS Code sees it: found, activated, its commands and settings real.

const EXTENSION_ID = 'strata.strata-coder';

interface ContributedCommand {
  command: string;
  title: string;
  category?: string;
}

function strata(): vscode.Extension<unknown> {
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
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

  it('activates without throwing', async () => {
    const ext = strata();
    await ext.activate();
    assert.strictEqual(ext.isActive, true);
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

  describe('setting strata.completion.enabled', () => {
    afterEach(async () => {
      await vscode.workspace.getConfiguration('strata').update('completion.enabled', undefined, vscode.ConfigurationTarget.Global);
    });

    it('reads back its default (true)', () => {
      const cfg = vscode.workspace.getConfiguration('strata');
      const info = cfg.inspect<boolean>('completion.enabled');
      assert.ok(info, 'strata.completion.enabled is not a contributed setting');
      assert.strictEqual(info.defaultValue, true);
      assert.strictEqual(info.globalValue, undefined, 'the test profile should not set it');
      assert.strictEqual(cfg.get('completion.enabled'), true);
    });

    it('can be updated and read back', async () => {
      await vscode.workspace.getConfiguration('strata').update('completion.enabled', false, vscode.ConfigurationTarget.Global);
      assert.strictEqual(vscode.workspace.getConfiguration('strata').get('completion.enabled'), false);
      assert.strictEqual(vscode.workspace.getConfiguration().get('strata.completion.enabled'), false);
      await vscode.workspace.getConfiguration('strata').update('completion.enabled', true, vscode.ConfigurationTarget.Global);
      assert.strictEqual(vscode.workspace.getConfiguration('strata').get('completion.enabled'), true);
    });

    it('is flipped by the command strata.toggleCompletions', async () => {
      await strata().activate();
      const before = vscode.workspace.getConfiguration('strata').get<boolean>('completion.enabled');
      assert.strictEqual(before, true);
      await vscode.commands.executeCommand('strata.toggleCompletions');
      assert.strictEqual(vscode.workspace.getConfiguration('strata').get('completion.enabled'), false);
      await vscode.commands.executeCommand('strata.toggleCompletions');
      assert.strictEqual(vscode.workspace.getConfiguration('strata').get('completion.enabled'), true);
    });
  });
});
