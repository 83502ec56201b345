import * as assert from 'assert';
import { ServerStatus } from '../../../src/core/protocol';
import { describeView, ViewInput } from '../../../src/vscode/serverControl/statusView';

// The status bar's words for every state, without VS Code.

const base: ViewInput = { completionsEnabled: true };
const server = (s: Partial<ServerStatus>): ServerStatus => ({ phase: 'stopped', since: 0, crashes: 0, ...s });

describe('status bar view', () => {
  it('no model: says so and opens the model picker on click (not a settings page), as a warning, not an error', () => {
    const v = describeView({ ...base, problem: { kind: 'no-model', message: 'No model chosen: pick one with "Strata: Switch Model".' } });
    assert.strictEqual(v.text, '$(circle-slash) Strata: no model');
    assert.strictEqual(v.command.command, 'strata.models.switch');
    assert.strictEqual(v.command.arguments, undefined);
    assert.strictEqual(v.severity, 'warning');
    assert.match(v.tooltip, /Click to pick one/);
  });

  it("no model here, but a server this window did not start answers (server.json): shows that server's model", () => {
    const v = describeView({
      ...base,
      problem: { kind: 'no-model', message: 'No model chosen' },
      external: { url: 'http://127.0.0.1:8080', model: '/models/qwen2.5-coder-7b-q8_0.gguf', via: '/state/server.json' },
    });
    assert.strictEqual(v.text, '$(sparkle) Strata · qwen2.5-coder-7b-q8_0');
    assert.strictEqual(v.severity, undefined);
    assert.strictEqual(v.command.command, 'strata.showServerStatus');
    assert.match(v.tooltip.replace(/\\/g, ''), /127\.0\.0\.1:8080.*announced in \/state\/server\.json/);
  });

  it('no model here, but a placed peer serves completions: shows that model on that peer', () => {
    const v = describeView({
      ...base,
      problem: { kind: 'no-model', message: 'No model chosen' },
      cluster: {
        peers: { up: 1, total: 1 },
        placements: [{ role: 'fim', peer: 'box2', model: 'qwen2.5-coder-7b-q8_0.gguf', phase: 'ready', since: 0, url: 'http://127.0.0.1:1', apiKey: 'k' }],
      },
    });
    assert.strictEqual(v.text, '$(sparkle) Strata · qwen2.5-coder-7b-q8_0 on box2');
  });

  it("no model here, but another window's server is ready: shows it (this window uses it too)", () => {
    const v = describeView({ ...base, problem: { kind: 'no-model', message: 'No model configured' }, server: server({ phase: 'ready', label: 'big' }) });
    assert.strictEqual(v.text, '$(sparkle) Strata · big');
    assert.match(v.tooltip, /another window loaded/);
  });

  it('no llama-server: points at the status (which offers build, download, path)', () => {
    const v = describeView({ ...base, problem: { kind: 'no-binary', message: 'No llama-server found.' } });
    assert.strictEqual(v.text, '$(warning) Strata: no llama-server');
    assert.strictEqual(v.command.command, 'strata.showServerStatus');
  });

  it('building and downloading show a percentage; an activity wins over the server phase', () => {
    assert.strictEqual(
      describeView({ ...base, activity: { kind: 'build', percent: 40.7, message: 'x' }, server: server({ phase: 'ready' }) }).text,
      '$(sync~spin) Strata: building 40%',
    );
    assert.strictEqual(describeView({ ...base, activity: { kind: 'download', percent: 3, message: 'x' } }).text, '$(cloud-download) Strata: downloading 3%');
    assert.strictEqual(describeView({ ...base, activity: { kind: 'benchmark', message: 'x' } }).text, '$(pulse) Strata: benchmarking');
  });

  it('loading 63%, ready with model and tok/s, failed with the last log lines', () => {
    assert.strictEqual(
      describeView({ ...base, server: server({ phase: 'loading', progress: 0.634, label: 'qwen' }) }).text,
      '$(sync~spin) Strata: loading 63%',
    );
    const ready = describeView({
      ...base,
      tokPerSec: 42.345,
      server: server({
        phase: 'ready',
        label: 'qwen2.5-coder-32b-q4_k_m',
        endpoint: { url: 'http://127.0.0.1:1', apiKey: 'k', pid: 1, port: 1, model: '/m.gguf' },
      }),
    });
    assert.strictEqual(ready.text, '$(sparkle) Strata · qwen2.5-coder-32b-q4_k_m · 42.3 tok/s');
    assert.strictEqual(ready.severity, undefined);
    assert.strictEqual(describeView({ ...base, tokPerSec: 123.6, server: server({ phase: 'ready', label: 'm' }) }).text, '$(sparkle) Strata · m · 124 tok/s');
    const failed = describeView({
      ...base,
      server: server({ phase: 'failed', error: { code: 'crash-loop', message: 'llama-server exited 4 times', logTail: ['a', 'b `c`'] } }),
    });
    assert.strictEqual(failed.text, '$(error) Strata: error');
    assert.strictEqual(failed.severity, 'error');
    assert.match(failed.tooltip, /exited 4 times/);
    assert.match(failed.tooltip, /b 'c'/);
  });

  it('completions off shows in the icon; idle unload reads "idle"; stopped offers Start', () => {
    assert.strictEqual(describeView({ completionsEnabled: false, server: server({ phase: 'ready', label: 'm' }) }).text, '$(circle-slash) Strata · m');
    assert.strictEqual(describeView({ ...base, server: server({ phase: 'stopped', stoppedReason: 'idle' }) }).text, '$(debug-stop) Strata: idle');
    const stopped = describeView({ ...base, server: server({ phase: 'stopped', stoppedReason: 'requested' }), userStopped: true });
    assert.strictEqual(stopped.text, '$(debug-stop) Strata: stopped');
    assert.strictEqual(stopped.command.command, 'strata.server.start');
  });

  it("another window's model: still shows its phase, with a note", () => {
    const v = describeView({
      ...base,
      problem: { kind: 'busy', message: 'big is loaded for another window' },
      server: server({ phase: 'ready', label: 'big' }),
    });
    assert.strictEqual(v.text, '$(sparkle) Strata · big');
    assert.match(v.tooltip, /another window/);
  });

  it('every text says "Strata" (tests and users look for it)', () => {
    const inputs: ViewInput[] = [
      base,
      { ...base, connecting: true },
      { ...base, lastError: 'x' },
      { ...base, problem: { kind: 'sidecar', message: 'x' } },
      { ...base, problem: { kind: 'bad-setting', message: 'x' } },
    ];
    for (const p of ['loading', 'ready', 'restarting', 'stopping', 'failed', 'stopped'] as const) inputs.push({ ...base, server: server({ phase: p }) });
    for (const i of inputs) assert.match(describeView(i).text, /Strata/);
  });

  it('a split model says how many peers hold it; the tooltip names the split, the placed servers and the peers up', () => {
    const v = describeView({
      ...base,
      server: server({ phase: 'ready', label: 'llama-3.3-70b' }),
      cluster: {
        split: { summary: '80 layers: 40 here, 40 on box2', peers: ['box2'] },
        placements: [{ role: 'fim', peer: 'box3', model: 'coder-7b.gguf', phase: 'down', since: 0, error: 'Peer box3 is not reachable' }],
        peers: { up: 1, total: 2 },
      },
    });
    assert.strictEqual(v.text, '$(sparkle) Strata · llama-3.3-70b +1 peer');
    const plain = v.tooltip.replace(/\\(.)/g, '$1'); // markdown escapes off
    assert.match(plain, /\*\*Split:\*\* 80 layers: 40 here, 40 on box2 \(peers: box2\)/);
    assert.match(plain, /\*\*Completions:\*\* coder-7b\.gguf on box3: down \(Peer box3 is not reachable\)/);
    assert.match(plain, /\*\*Peers:\*\* 1 of 2 reachable/);
    const alone = describeView({ ...base, server: server({ phase: 'ready', label: 'm' }), cluster: { placements: [], peers: { up: 0, total: 1 } } });
    assert.strictEqual(alone.text, '$(sparkle) Strata · m');
  });
});
