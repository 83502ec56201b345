import * as assert from 'assert';
import { estimateLineTokens, estimateTokens } from '../../../src/core/completion/tokenEstimate';

// The calibration against the real tokenizer is in test/integration/completionServer.test.ts.
describe('estimateTokens', () => {
  it('counts identifiers by segment, punctuation runs in pairs, a line break with indentation as one', () => {
    assert.strictEqual(estimateTokens(''), 0);
    assert.ok(estimateTokens('getTextDocument') >= 3);
    assert.ok(estimateTokens('a9F3kQ0zX7bL2mN8') > estimateTokens('abcdefghijklmnop'), 'random-looking runs cost more');
    assert.ok(estimateTokens('foo();\n    bar();') < estimateTokens('foo();\n\n\n\nbar();'));
  });

  it('sums per line to about the same as for the whole text', () => {
    const text = 'function f(a, b) {\n  return a + b;\n}\n\nconst x = f(1, 2);\n';
    const perLine = text.split('\n').reduce((s, l) => s + estimateLineTokens(l), 0);
    assert.ok(Math.abs(perLine - estimateTokens(text)) <= 3, `${perLine} vs ${estimateTokens(text)}`);
  });

  it('costs microseconds per line', () => {
    const line = '    const result = await this.client.infill({ input_prefix: prefix, n_predict: 64 });';
    for (let i = 0; i < 1000; i++) estimateLineTokens(line + i);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 10_000; i++) estimateLineTokens(line + i);
    const perLineUs = Number(process.hrtime.bigint() - t0) / 1e3 / 10_000;
    assert.ok(perLineUs < 20, `${perLineUs.toFixed(2)} µs per line`);
  });
});
