import * as assert from 'assert';
import { LoadProgressParser, ROUTER_STATE_PREFIX } from '../../../src/daemon/loadProgress';

const router = (o: unknown) => `${ROUTER_STATE_PREFIX}${JSON.stringify(o)}`;

describe('llama-server load progress', () => {
  it('maps router-mode fractions onto the tensor-loading span, and hides those lines', () => {
    const p = new LoadProgressParser();
    const a = p.line(router({ state: 'loading', payload: { stages: ['text_model'], current: 'text_model', value: 0 } }));
    assert.strictEqual(a.internal, true);
    assert.strictEqual(a.progress?.fraction, 0.05);
    const b = p.line(router({ state: 'loading', payload: { stages: ['text_model'], current: 'text_model', value: 0.5 } }));
    assert.ok(Math.abs(b.progress!.fraction - 0.475) < 1e-9);
    const c = p.line(router({ state: 'ready', payload: {} }));
    assert.strictEqual(c.readyHint, true);
    assert.strictEqual(c.progress?.fraction, 0.99);
  });

  it('splits the span between stages (draft model after the main one)', () => {
    const p = new LoadProgressParser();
    const r = p.line(router({ state: 'loading', payload: { stages: ['text_model', 'spec_model'], current: 'spec_model', value: 0 } }));
    assert.ok(Math.abs(r.progress!.fraction - 0.475) < 1e-9);
    assert.strictEqual(r.progress!.stage, 'loading spec_model');
  });

  it('follows milestones of any build and never goes backwards', () => {
    const p = new LoadProgressParser();
    const seen: number[] = [];
    for (const l of [
      "srv    load_model: loading model '/m.gguf'",
      'load_tensors: loading model tensors, this can take a while... (load_mode = mmap)',
      'llama_context: constructing llama_context',
      "srv    load_model: loading model '/m.gguf'",
      'common_init_: warming up the model with an empty run - please wait ...',
      'srv    load_model: initializing, n_slots = 4',
    ]) {
      const r = p.line(l);
      if (r.progress) seen.push(r.progress.fraction);
    }
    assert.deepStrictEqual(seen, [0.02, 0.05, 0.92, 0.95, 0.97]);
    assert.strictEqual(p.line('srv  llama_server: model loaded').readyHint, true);
    assert.strictEqual(p.line('garbage').progress, undefined);
  });

  it('counts the progress dots of older builds', () => {
    const p = new LoadProgressParser();
    assert.strictEqual(p.partial('....')?.fraction.toFixed(3), (0.05 + 0.85 * 0.04).toFixed(3));
    assert.strictEqual(p.partial('..'), undefined, 'went backwards');
    assert.strictEqual(p.partial('loading'), undefined);
  });

  it('survives a malformed router line', () => {
    const p = new LoadProgressParser();
    assert.deepStrictEqual(p.line(`${ROUTER_STATE_PREFIX}{oops`), { internal: true });
  });
});
