import * as assert from 'assert';
import { acceptFrom, keysToType, nextWordLength } from '../../../bench/completions/accept';

// The completion benchmark's simulated user: when a suggestion is taken, whole or word by word,
// and how many keystrokes that saves.

describe('completion benchmark: accepting suggestions', () => {
  it('counts a line break and its indentation as one Enter (auto-indent)', () => {
    assert.strictEqual(keysToType('a = 1\n    b'), 7);
  });

  it("takes words as VS Code's accept-next-word does", () => {
    assert.strictEqual(nextWordLength('self.value = x'), 4);
    assert.strictEqual(nextWordLength('.value = x'), 1);
    assert.strictEqual(nextWordLength(' = x'), 1);
    assert.strictEqual(nextWordLength('= x'), 2);
    assert.strictEqual(nextWordLength('  foo'), 2);
  });

  it('presses Tab when the whole suggestion is what comes next', () => {
    assert.deepStrictEqual(acceptFrom('return a + b', 'return a + b\n}', false), { text: 'return a + b', keys: 1, how: 'full' });
    assert.strictEqual(acceptFrom('return a - b', 'return a + b\n}', false), undefined);
    assert.strictEqual(acceptFrom('r', 'return', false), undefined, 'one character saves nothing');
  });

  it('with words on, takes the matching words of a suggestion that goes wrong later', () => {
    assert.deepStrictEqual(acceptFrom('self.value = y', 'self.value = x\n', true), { text: 'self.value = ', keys: 5, how: 'word' });
    assert.strictEqual(acceptFrom('seb', 'self', true), undefined);
    assert.strictEqual(acceptFrom('x.y', 'x.z', true), undefined, 'two words for two characters saves nothing');
  });
});
