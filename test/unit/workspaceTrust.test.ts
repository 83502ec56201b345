import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { isRestrictedSetting, RESTRICTED_SETTINGS, trustedValue } from '../../src/core/workspaceTrust';

// Workspace trust (issue 13): the manifest and the code agree on which settings a workspace may
// not set while untrusted, every setting has been looked at, and every `strata.*` read in the
// extension goes through strataSettings(). The attack itself runs in the extension host:
// test/exthost/suite/workspaceTrust.test.ts (npm run test:exthost -- --untrusted).

const ROOT = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  capabilities?: { untrustedWorkspaces?: { supported: unknown; restrictedConfigurations?: string[] } };
  contributes: { configuration: { properties: Record<string, { scope?: string }> } | Array<{ properties: Record<string, { scope?: string }> }> };
};
const properties = Object.assign({}, ...[pkg.contributes.configuration].flat().map((c) => c.properties)) as Record<string, { scope?: string }>;

/**
 * Settings a workspace may set: each was looked at and only shapes what the user's own server
 * does with what the user types (amounts, timings, sampling, on/off), never what runs, which
 * file is read or written, or where a request goes. A new setting must be put here or in
 * RESTRICTED_SETTINGS (src/core/workspaceTrust.ts).
 */
const WORKSPACE_MAY_SET = [
  'strata.completion.enabled',
  'strata.completion.debounceMs',
  'strata.completion.maxTokens',
  'strata.completion.languages',
  'strata.completion.triggerMode',
  'strata.completion.maxLines',
  'strata.completion.maxPredictMs',
  'strata.completion.infillSampler',
  'strata.completion.prefixLines',
  'strata.completion.suffixLines',
  'strata.completion.extraContext.chunks',
  'strata.completion.extraContext.chunkLines',
  'strata.chat.maxTokens',
  'strata.chat.temperature',
  'strata.chat.includeActiveFile',
  'strata.server.contextSize',
  'strata.server.gpuLayers',
  'strata.server.autoStart',
  'strata.sidecar.idleUnloadMinutes',
  'strata.models.contextSize',
  'strata.models.kvCacheType',
  'strata.models.slots',
  'strata.models.memoryBandwidthGBps',
  'strata.models.planner',
  'strata.models.scanCaches',
  'strata.cluster.mode',
];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('workspace trust: which settings a workspace may set', () => {
  it('package.json declares limited support in Restricted Mode with exactly the restricted settings', () => {
    const u = pkg.capabilities?.untrustedWorkspaces;
    assert.strictEqual(u?.supported, 'limited');
    assert.deepStrictEqual(u?.restrictedConfigurations, [...RESTRICTED_SETTINGS]);
  });

  it('every contributed setting is either restricted or reviewed as harmless from a workspace', () => {
    const all = Object.keys(properties).sort();
    for (const k of RESTRICTED_SETTINGS) assert.ok(k in properties, `${k} is restricted but not contributed`);
    assert.deepStrictEqual(
      all.filter((k) => !isRestrictedSetting(k) && !WORKSPACE_MAY_SET.includes(k)),
      [],
      'settings nobody decided on (restrict them or list them in WORKSPACE_MAY_SET)',
    );
    assert.deepStrictEqual(
      WORKSPACE_MAY_SET.filter((k) => isRestrictedSetting(k) || !(k in properties)),
      [],
    );
  });

  it('the peers and placements stay machine-scoped (a workspace never sets them, trusted or not)', () => {
    assert.strictEqual(properties['strata.cluster.peers'].scope, 'machine');
    assert.strictEqual(properties['strata.cluster.placement'].scope, 'machine');
  });

  it('every strata.* read in the extension goes through strataSettings()', () => {
    const offenders = sourceFiles(path.join(ROOT, 'src'))
      .filter((f) => !f.endsWith(path.join('vscode', 'workspaceTrust.ts')))
      .filter((f) => /\bworkspace\.getConfiguration\s*\(/.test(fs.readFileSync(f, 'utf8')))
      .map((f) => path.relative(ROOT, f));
    assert.deepStrictEqual(offenders, [], 'read settings with strataSettings() from src/vscode/workspaceTrust.ts');
  });
});

describe('workspace trust: the value an untrusted workspace gets', () => {
  it("the user's value wins over the workspace's; without one, the default", () => {
    assert.strictEqual(
      trustedValue({ defaultValue: '', globalValue: '/usr/bin/llama-server', workspaceValue: './evil', workspaceFolderValue: './evil2' }, ''),
      '/usr/bin/llama-server',
    );
    assert.strictEqual(trustedValue({ defaultValue: '', workspaceValue: './evil' }, 'x'), '');
    assert.deepStrictEqual(trustedValue<string[]>({ workspaceFolderValue: ['--rpc', 'h:1'] }, []), []);
    assert.strictEqual(trustedValue({ globalValue: 'a', globalLanguageValue: 'b', workspaceLanguageValue: 'evil' }, ''), 'b');
    assert.strictEqual(trustedValue(undefined, 'fallback'), 'fallback');
  });
});
