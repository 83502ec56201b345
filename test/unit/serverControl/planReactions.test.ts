import * as assert from 'assert';
import type { ServerPhase, ServerPlan, ServerStatus } from '../../../src/core/protocol';
import { answerDemand } from '../../../src/vscode/serverControl/demand';
import { reactToReplan, reactToSettings } from '../../../src/vscode/serverControl/planReactions';

// The controller's decisions, without VS Code: what a new plan does to the server the daemon
// runs, and what a keystroke that finds no server is told (and whether it loads the model).

const plan = (model: string, binary = '/opt/llama-server'): ServerPlan => ({
  binaryPath: binary,
  modelPath: `/models/${model}.gguf`,
  args: ['-c', '8192'],
  label: model,
});
const running = (p: ServerPlan | undefined, phase: ServerPhase, extra: Partial<ServerStatus> = {}): ServerStatus => ({
  phase,
  since: 0,
  crashes: 0,
  ...(p ? { plan: p } : {}),
  ...extra,
});
const a = plan('a');
const b = plan('b');

describe('sidecar controller decisions', () => {
  describe('after a settings change', () => {
    const base = { userStopped: false, autoStart: true };
    it('switches the server this window loaded to the new plan', () => {
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: b, running: running(a, 'ready') }), 'switch');
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: b, running: running(a, 'loading'), autoStart: false }), 'switch');
    });
    it("unloads this window's model when the model setting is cleared, and leaves another window's alone", () => {
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: undefined, running: running(a, 'ready') }), 'unload');
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: undefined, running: running(b, 'ready') }), 'none');
    });
    it('leaves a running server of the same plan alone, and loads a failed or stopped one when autoStart wants it', () => {
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: a, running: running(a, 'ready') }), 'none');
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: a, running: running(a, 'failed') }), 'load');
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: a, running: running(a, 'stopped') }), 'load');
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: a, running: running(a, 'stopped'), autoStart: false }), 'none');
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: a, running: running(a, 'stopped'), userStopped: true }), 'none');
    });
    it('does not take over a server another window loaded: it loads (the daemon then says busy)', () => {
      assert.strictEqual(reactToSettings({ ...base, old: a, plan: b, running: running(plan('c'), 'ready') }), 'load');
    });
  });

  describe('after an install or a benchmark', () => {
    const base = { userStopped: false, wantLoad: true };
    it('switches a server running the old plan to a new binary', () => {
      const faster = plan('a', '/cache/build-vulkan/llama-server');
      assert.strictEqual(reactToReplan({ ...base, old: a, plan: faster, running: running(a, 'ready') }), 'switch');
      assert.strictEqual(reactToReplan({ ...base, old: a, plan: faster, running: running(a, 'stopped') }), 'load');
    });
    it('loads only when asked to and the user did not stop the server; nothing without a plan', () => {
      assert.strictEqual(reactToReplan({ ...base, old: a, plan: a, running: running(a, 'ready') }), 'load');
      assert.strictEqual(reactToReplan({ ...base, old: a, plan: a, running: undefined, wantLoad: false }), 'none');
      assert.strictEqual(reactToReplan({ ...base, old: a, plan: a, running: undefined, userStopped: true }), 'none');
      assert.strictEqual(reactToReplan({ ...base, old: a, plan: undefined, running: running(a, 'ready') }), 'none');
    });
  });

  describe('a keystroke with no server', () => {
    const base = { userStopped: false, loading: false };
    it('says the problem, the user stop, the failure or the load in one sentence', () => {
      assert.strictEqual(answerDemand({ ...base, problem: { kind: 'no-model', message: 'No model chosen.' } }).error?.message, 'No model chosen.');
      assert.match(answerDemand({ ...base, plan: a, userStopped: true }).error?.message ?? '', /stopped: run "Strata: Start Server"/);
      assert.strictEqual(
        answerDemand({ ...base, server: running(a, 'failed', { error: { code: 'model-load-failed', message: 'out of memory' } }) }).error?.message,
        'out of memory',
      );
      assert.match(answerDemand({ ...base, plan: a, loading: true }).error?.message ?? '', /loading the model/);
    });
    it('loads the model after an idle unload, but not after a stop on request', () => {
      assert.deepStrictEqual(answerDemand({ ...base, plan: a, server: running(a, 'stopped', { stoppedReason: 'idle' }) }).load, true);
      const requested = answerDemand({ ...base, plan: a, server: running(a, 'stopped', { stoppedReason: 'requested' }) });
      assert.strictEqual(requested.load, undefined);
      assert.match(requested.error?.message ?? '', /was stopped/);
    });
    it("a busy problem does not block another window's ready server", () => {
      assert.deepStrictEqual(answerDemand({ ...base, plan: a, problem: { kind: 'busy', message: 'b is loaded' }, server: running(b, 'ready') }), {});
    });
  });
});
