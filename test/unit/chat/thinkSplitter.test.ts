import * as assert from 'assert';
import { splitThinking, ThinkSplitter } from '../../../src/core/chat/thinkSplitter';

describe('chat: ThinkSplitter', () => {
  function feed(parts: string[]) {
    const s = new ThinkSplitter();
    let content = '';
    let reasoning = '';
    for (const p of parts) {
      const d = s.push(p);
      content += d.content;
      reasoning += d.reasoning;
    }
    const e = s.end();
    return { content: content + e.content, reasoning: reasoning + e.reasoning };
  }

  it('passes plain answers through untouched', () => {
    assert.deepStrictEqual(feed(['Hello', ' world']), { content: 'Hello world', reasoning: '' });
  });

  it('separates <think> at the start, whatever the chunking', () => {
    const text = '<think>\nplan: a, b\n</think>\n\nThe answer.';
    for (let size = 1; size <= text.length; size++) {
      const parts: string[] = [];
      for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
      assert.deepStrictEqual(feed(parts), { content: 'The answer.', reasoning: '\nplan: a, b\n' }, `chunk size ${size}`);
    }
  });

  it('keeps a <think> that appears later in the answer as content', () => {
    assert.deepStrictEqual(feed(['Use the ', '<think>', ' tag']), { content: 'Use the <think> tag', reasoning: '' });
  });

  it('treats an unterminated think block as reasoning (stopped while thinking)', () => {
    assert.deepStrictEqual(feed(['<think>hmm, ', 'let me see']), { content: '', reasoning: 'hmm, let me see' });
  });

  it('does not hold back text that only looks like the start of a tag', () => {
    const s = new ThinkSplitter();
    assert.strictEqual(s.push('<thi').content, '');
    assert.strictEqual(s.push('s is html').content, '<this is html');
  });

  it('splitThinking works on stored text', () => {
    assert.deepStrictEqual(splitThinking('<think>x</think>y'), { content: 'y', reasoning: 'x' });
  });
});
