import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';

// The server commands and settings in a real extension host, with no model configured (the
// runner gives a private STRATA_STATE_DIR): no daemon is started, the status bar says "no
// model" without an error storm, "Show Server Status" reports what llama-server would run.
// The full daemon path (model set, two windows, idle exit) is test/e2e/sidecar.test.ts.

interface Explanation {
  severity: 'warning' | 'error';
  text: string;
  actions: string[];
}

interface StrataApi {
  statusBarText(): string;
  /** The extension's sidecar controller; lastExplanation is the last problem notification it showed. */
  sidecar: { lastExplanation?: Explanation };
}

interface Report {
  connected: boolean;
  sidecar?: {
    phase: string;
    problem?: { kind: string; message: string };
    binary?: { path: string; kind: string; version?: string; backends: string[] };
    installedBuilds?: { id: string }[];
  };
}

const ext = () => vscode.extensions.getExtension<StrataApi>('strata.strata-coder')!;

describe('Strata server commands (no model configured)', () => {
  before(async () => {
    await ext().activate();
  });

  it('contributes the server commands and settings', async () => {
    const all = new Set(await vscode.commands.getCommands(true));
    for (const id of [
      'strata.server.start',
      'strata.server.stop',
      'strata.server.restart',
      'strata.server.showLogs',
      'strata.showServerStatus',
      'strata.server.build',
      'strata.server.download',
      'strata.server.benchmarkBackends',
    ]) {
      assert.ok(all.has(id), `${id} is not registered`);
    }
    const cfg = vscode.workspace.getConfiguration('strata');
    assert.strictEqual(cfg.inspect('model.path')?.defaultValue, '');
    assert.strictEqual(cfg.inspect('sidecar.idleUnloadMinutes')?.defaultValue, 30);
    assert.deepStrictEqual(cfg.inspect('server.extraArgs')?.defaultValue, []);
  });

  it('the status bar says there is no model, and no sidecar was started for nothing', async () => {
    assert.match(ext().exports.statusBarText(), /Strata: no model/);
    const state = process.env.STRATA_STATE_DIR;
    assert.ok(state, 'the runner sets STRATA_STATE_DIR');
    assert.ok(!fs.existsSync(path.join(state, 'sidecar.lock')), 'a sidecar was started without a model');
  });

  it('"Show Server Status" returns the report: no model, and which llama-server would run', async () => {
    const r = await vscode.commands.executeCommand<Report>('strata.showServerStatus');
    assert.strictEqual(r.connected, false);
    assert.strictEqual(r.sidecar?.phase, 'no-sidecar');
    assert.strictEqual(r.sidecar?.problem?.kind, 'no-model');
    assert.match(r.sidecar!.problem!.message, /strata\.model\.path/);
    if (r.sidecar?.binary) {
      // The test machine has the cached CPU build: it is found as a managed install and inspected.
      assert.match(r.sidecar.binary.version ?? '', /^version: /);
      assert.ok(r.sidecar.binary.backends.includes('CPU'));
    }
  });

  it('Start Server without a model explains why (a warning naming the setting, with "Pick a Model") and starts nothing; Stop and Restart are harmless', async () => {
    const api = ext().exports;
    const problem = (await vscode.commands.executeCommand<Report>('strata.showServerStatus')).sidecar?.problem?.message ?? '';
    assert.match(problem, /strata\.model\.path/);
    const explained: Explanation = { severity: 'warning', text: `Strata: ${problem}`, actions: ['Pick a Model'] };
    api.sidecar.lastExplanation = undefined;
    assert.strictEqual(await vscode.commands.executeCommand('strata.server.start'), undefined, 'Start returned a server');
    assert.deepStrictEqual(api.sidecar.lastExplanation, explained);
    api.sidecar.lastExplanation = undefined;
    await vscode.commands.executeCommand('strata.server.stop');
    assert.strictEqual(api.sidecar.lastExplanation, undefined, 'Stop has nothing to explain');
    await vscode.commands.executeCommand('strata.server.restart');
    assert.deepStrictEqual(api.sidecar.lastExplanation, explained);
    const files = await vscode.commands.executeCommand<{ daemonLog: string; serverLog: string }>('strata.server.showLogs');
    assert.ok(files.daemonLog.endsWith('sidecar.log') && files.serverLog.endsWith('llama-server.log'));
    assert.ok(!fs.existsSync(path.join(process.env.STRATA_STATE_DIR!, 'sidecar.lock')), 'a sidecar was started without a model');
    assert.match(api.statusBarText(), /Strata: no model/);
  });

  it('a model path that is not absolute is a settings problem in the status bar, cleared with the setting', async () => {
    const cfg = vscode.workspace.getConfiguration('strata');
    try {
      await cfg.update('model.path', 'relative/model.gguf', vscode.ConfigurationTarget.Global);
      await waitFor(() => /check settings/.test(ext().exports.statusBarText()), 5000);
      const r = await vscode.commands.executeCommand<Report>('strata.showServerStatus');
      assert.strictEqual(r.sidecar?.problem?.kind, 'bad-setting');
      assert.match(r.sidecar!.problem!.message, /absolute path/);
    } finally {
      await cfg.update('model.path', undefined, vscode.ConfigurationTarget.Global);
    }
    await waitFor(() => /no model/.test(ext().exports.statusBarText()), 5000);
  });
});

async function waitFor(check: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Strata installer commands in the extension host', function () {
  // A fresh cache may have to compile llama-bench for the cached build first (~1-2 min on 2 cores).
  this.timeout(300_000);
  const cfg = () => vscode.workspace.getConfiguration('strata');

  after(async () => {
    for (const k of ['model.path', 'server.autoStart']) await cfg().update(k, undefined, vscode.ConfigurationTarget.Global);
  });

  it('"Build llama-server" for the CPU finds the cached build at once and keeps the window usable', async () => {
    const build = await vscode.commands.executeCommand<{ serverPath: string; built: boolean; backend: string } | undefined>('strata.server.build', 'cpu');
    assert.ok(build, 'the build command returned nothing (it failed; see the Strata log)');
    assert.strictEqual(build.backend, 'cpu');
    assert.strictEqual(build.built, false, 'the cached build was compiled again');
    assert.ok(fs.existsSync(build.serverPath));
    assert.doesNotMatch(ext().exports.statusBarText(), /building/);
  });

  it('"Benchmark Backends" runs llama-bench on the installed builds for the model, keeps the results and names the default', async () => {
    const { ensureTinyModel } = await import('../../fixtures/models');
    const model = await ensureTinyModel();
    // No server: the benchmark must not start one either.
    await cfg().update('server.autoStart', false, vscode.ConfigurationTarget.Global);
    await cfg().update('model.path', model, vscode.ConfigurationTarget.Global);
    await waitFor(() => /stopped/.test(ext().exports.statusBarText()), 10_000);
    const seen: string[] = [];
    const sub = setInterval(() => seen.push(ext().exports.statusBarText()), 20);
    let record: { defaultBuildId?: string; results: { buildId: string; figures?: { tg: number; pp: number }; error?: string }[] } | undefined;
    try {
      record = await vscode.commands.executeCommand('strata.server.benchmarkBackends', { nPrompt: 32, nGen: 8, repetitions: 1, benchArgs: ['-t', '2'] });
    } finally {
      clearInterval(sub);
    }
    assert.ok(record, 'the benchmark returned nothing (see the Strata log)');
    assert.ok(record.results.length >= 1);
    const ok = record.results.filter((r) => r.figures);
    assert.ok(ok.length >= 1, `no build could run llama-bench: ${record.results.map((r) => r.error).join('; ')}`);
    assert.ok(record.defaultBuildId && ok.some((r) => r.buildId === record!.defaultBuildId));
    assert.ok(
      seen.some((t) => /benchmarking/.test(t)),
      `the status bar never said "benchmarking": ${[...new Set(seen)].join(' | ')}`,
    );
    const stored = JSON.parse(fs.readFileSync(path.join(process.env.STRATA_STATE_DIR!, 'backend-benchmarks.json'), 'utf8'));
    assert.ok(Object.values(stored.models).some((m) => (m as { defaultBuildId?: string }).defaultBuildId === record!.defaultBuildId));
    assert.ok(!fs.existsSync(path.join(process.env.STRATA_STATE_DIR!, 'sidecar.lock')), 'the benchmark started a sidecar');
  });
});
