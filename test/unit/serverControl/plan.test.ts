import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  defaultServerArgs,
  DEFAULT_SERVER_SETTINGS,
  expandModelPath,
  ModelSettingError,
  NoServerBinaryError,
  PlanContext,
  settingsPlanProvider,
} from '../../../src/vscode/serverControl/plan';
import { findServerFor } from '../../../src/vscode/serverControl/binary';

// The default ModelPlanProvider (strata.model.path) and the binary it resolves.

describe('plan from settings', () => {
  const ctx = (s: Partial<typeof DEFAULT_SERVER_SETTINGS>, bin = '/opt/llama-server'): PlanContext => ({
    settings: { ...DEFAULT_SERVER_SETTINGS, ...s },
    resolveBinary: () => ({ path: bin, kind: 'setting' }),
  });

  it('no model: undefined (the status bar says so)', async () => {
    assert.strictEqual(await settingsPlanProvider(ctx({})), undefined);
    assert.strictEqual(await settingsPlanProvider(ctx({ modelPath: '  ' })), undefined);
  });

  it('a model: binary, flags with extraArgs last, label, idle unload in ms', async () => {
    const plan = await settingsPlanProvider(
      ctx({ modelPath: '/models/Qwen2.5-Coder-7B.Q4_K_M.gguf', extraArgs: ['-t', '2', '-c', '2048'], idleUnloadMinutes: 0.5 }),
    );
    assert.deepStrictEqual(plan, {
      binaryPath: '/opt/llama-server',
      modelPath: '/models/Qwen2.5-Coder-7B.Q4_K_M.gguf',
      args: ['-c', '8192', '--cache-reuse', '256', '-ngl', '999', '-t', '2', '-c', '2048'],
      label: 'Qwen2.5-Coder-7B.Q4_K_M',
      idleUnloadMs: 30_000,
    });
    const never = await settingsPlanProvider(ctx({ modelPath: '/m.gguf', idleUnloadMinutes: 0 }));
    assert.strictEqual(never?.idleUnloadMs, undefined);
    assert.deepStrictEqual(defaultServerArgs({ ...DEFAULT_SERVER_SETTINGS, gpuLayers: -1 }), ['-c', '8192', '--cache-reuse', '256']);
  });

  it('~ expands; a relative path is a setting error with the fix in it', () => {
    assert.strictEqual(expandModelPath('~/m.gguf', '/home/u'), path.join('/home/u', 'm.gguf'));
    assert.throws(
      () => expandModelPath('models/m.gguf'),
      (e: Error) => e instanceof ModelSettingError && /absolute path/.test(e.message),
    );
  });

  it('findServerFor: the setting wins; a wrong setting is an error, not a silent fallback', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-plan-'));
    try {
      const bin = path.join(tmp, 'llama-server');
      fs.writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
      const ok = findServerFor({ serverPath: bin }, undefined, { cacheDir: tmp, stateDir: tmp });
      assert.deepStrictEqual(ok.found, { path: bin, kind: 'setting' });
      const bad = findServerFor({ serverPath: path.join(tmp, 'nope') }, undefined, { cacheDir: tmp, stateDir: tmp });
      assert.strictEqual(bad.found, undefined);
      assert.match(bad.problem!.message, /does not exist: fix the setting/);
      assert.ok(new NoServerBinaryError(bad).message.includes('strata.server.path'));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
