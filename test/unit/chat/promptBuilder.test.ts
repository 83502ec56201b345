import * as assert from 'assert';
import { AssistantTurn, ContextSnapshot, Turn, UserTurn } from '../../../src/core/chat/conversation';
import { buildPrompt, ContextWindowTooSmallError, cutAround, fence, PER_MESSAGE_OVERHEAD } from '../../../src/core/chat/promptBuilder';
import { TokenCounter } from '../../../src/core/chat/tokenCounter';

/** One token per 4 characters, exactly: makes budgets easy to reason about. */
const counter: TokenCounter = { exact: true, count: async (t: string) => Math.ceil(t.length / 4) };

let n = 0;
const user = (text: string, context: ContextSnapshot[] = []): UserTurn => ({ id: `u${++n}`, role: 'user', text, context, at: 0 });
const answer = (content: string, status: AssistantTurn['status'] = 'done'): AssistantTurn => ({ id: `a${++n}`, role: 'assistant', content, status, at: 0 });
const file = (name: string, lines: number, kind: ContextSnapshot['kind'] = 'file'): ContextSnapshot => ({
  kind,
  label: name,
  path: name,
  languageId: 'ts',
  text: Array.from({ length: lines }, (_, i) => `line ${String(i).padStart(5, '0')} ${'x'.repeat(30)}`).join('\n'),
});

describe('chat: prompt building within the context window', () => {
  it('sends everything when it fits, with context before the question', async () => {
    const turns: Turn[] = [user('first?'), answer('first answer'), user('second?', [file('a.ts', 3)])];
    const p = await buildPrompt(turns, counter, { contextSize: 4096, reserveForAnswer: 512, systemPrompt: 'sys' });
    assert.deepStrictEqual(p.notices, []);
    assert.strictEqual(p.truncated, false);
    assert.deepStrictEqual(
      p.messages.map((m) => m.role),
      ['system', 'user', 'assistant', 'user'],
    );
    const last = p.messages[3].content;
    assert.ok(last.indexOf('File a.ts:') < last.indexOf('second?'));
    assert.ok(last.includes('```ts\nline 00000'));
    assert.ok(p.promptTokens <= 4096 - 512);
    assert.strictEqual(p.maxAnswerTokens, 4096 - p.promptTokens);
  });

  it('skips failed answers and never sends thinking back', async () => {
    const a = answer('kept');
    a.reasoning = 'SECRET THOUGHTS';
    const turns: Turn[] = [user('q1'), answer('', 'error'), user('q2'), a, user('q3')];
    const p = await buildPrompt(turns, counter, { contextSize: 4096, reserveForAnswer: 100 });
    assert.ok(!JSON.stringify(p.messages).includes('SECRET'));
    assert.deepStrictEqual(p.messages.map((m) => m.content).slice(1), ['q2', 'kept', 'q3']);
  });

  it('drops earlier attachments first, then the oldest exchanges, and says so', async () => {
    const big = file('old.ts', 60); // ~ 60 * 40 / 4 = 600 tokens
    const turns: Turn[] = [user('q1', [big]), answer('a1'.repeat(100)), user('q2'), answer('a2'), user('q3')];
    const p1 = await buildPrompt(turns, counter, { contextSize: 600, reserveForAnswer: 100 });
    assert.ok(!p1.messages.some((m) => m.content.includes('line 00000')), 'old attachment left out');
    assert.strictEqual(p1.messages.length, 6, 'all exchanges kept');
    assert.match(p1.notices.join(' '), /attachments of 1 earlier question/);

    const p2 = await buildPrompt(turns, counter, { contextSize: 120, reserveForAnswer: 40, systemPrompt: 'sys' });
    assert.deepStrictEqual(p2.messages.map((m) => m.content).slice(1), ['q2', 'a2', 'q3']);
    assert.match(p2.notices.join(' '), /earliest exchange/);
    assert.ok(p2.promptTokens <= 80, `prompt ${p2.promptTokens}`);
  });

  it('cuts the current attachment around its focus line, files before the selection', async () => {
    const f = file('big.ts', 400); // ~4000 tokens
    f.focusLine = 300;
    const sel: ContextSnapshot = {
      ...file('sel.ts', 5, 'selection'),
      text: 'selected();\n'.repeat(5),
      range: { startLine: 0, startCharacter: 0, endLine: 4, endCharacter: 0 },
    };
    const p = await buildPrompt([user('explain', [f, sel])], counter, { contextSize: 2048, reserveForAnswer: 512 });
    const msg = p.messages[1].content;
    assert.ok(msg.includes('line 00300'), 'the focus line is kept');
    assert.ok(!msg.includes('line 00000 '), 'far lines are cut');
    assert.match(msg, /lines above left out/);
    assert.ok(msg.includes('Selected code from sel.ts (lines 1-5)'), 'the selection is untouched');
    assert.match(p.notices.join(' '), /Cut big\.ts to [\d,]+ of its [\d,]+ tokens/);
    assert.ok(p.promptTokens <= 2048 - 512, `prompt ${p.promptTokens} over budget`);
  });

  it('cuts the middle of an overlong question and fails clearly when nothing fits', async () => {
    const long = 'START ' + 'word '.repeat(4000) + ' END';
    const p = await buildPrompt([user(long)], counter, { contextSize: 1024, reserveForAnswer: 256 });
    const msg = p.messages[1].content;
    assert.ok(msg.startsWith('START') && msg.endsWith('END') && msg.includes('[…]'));
    assert.match(p.notices.join(' '), /Cut the middle of your message/);
    assert.ok(p.promptTokens <= 1024 - 256);

    await assert.rejects(
      buildPrompt([user(long)], counter, { contextSize: 64, reserveForAnswer: 32, systemPrompt: 'x'.repeat(200) }),
      ContextWindowTooSmallError,
    );
  });

  it('accounts for the chat template around each message', async () => {
    const p = await buildPrompt([user('abcd')], counter, { contextSize: 4096, reserveForAnswer: 0, systemPrompt: 'abcd' });
    assert.strictEqual(p.promptTokens, 1 + 1 + 2 * PER_MESSAGE_OVERHEAD);
  });

  it('fence() outlasts backtick runs inside the text', () => {
    assert.strictEqual(fence('a ```` b', 'md'), '`````md\na ```` b\n`````');
  });

  it('cutAround keeps whole lines around the focus', () => {
    const text = Array.from({ length: 100 }, (_, i) => `L${i}`).join('\n');
    const r = cutAround(text, 40, 50);
    assert.ok(r.text.split('\n').includes('L50'));
    assert.ok(r.text.length <= 40);
    assert.strictEqual(r.omittedBefore + r.omittedAfter + r.text.split('\n').length, 100);
  });
});
