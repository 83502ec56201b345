import * as assert from 'assert';
import { conversationView, isSafeExternalLink, parseFromWebview } from '../../../src/core/chat/webviewProtocol';

describe('chat: messages from the webview are validated', () => {
  it('accepts well-formed messages', () => {
    assert.deepStrictEqual(parseFromWebview({ type: 'send', text: 'hi' }), { type: 'send', text: 'hi', replaceLast: false });
    assert.deepStrictEqual(parseFromWebview({ type: 'codeAction', action: 'apply', code: 'x', lang: 'ts' }), {
      type: 'codeAction',
      action: 'apply',
      code: 'x',
      lang: 'ts',
    });
    assert.deepStrictEqual(parseFromWebview({ type: 'stop', extra: 1 }), { type: 'stop' });
  });

  it('rejects unknown types, wrong field types and unknown actions', () => {
    for (const m of [
      null,
      1,
      'send',
      {},
      { type: 'eval', code: 'x' },
      { type: 'send', text: 5 },
      { type: 'codeAction', action: 'run', code: 'x' },
      { type: 'openLink' },
    ]) {
      assert.strictEqual(parseFromWebview(m), undefined, JSON.stringify(m));
    }
  });

  it('opens only http(s) links', () => {
    assert.ok(isSafeExternalLink('https://example.com'));
    for (const bad of ['javascript:alert(1)', 'file:///etc/passwd', 'command:workbench.action.quit', 'vscode://ext', 'data:text/html,x', 'not a url']) {
      assert.ok(!isSafeExternalLink(bad), bad);
    }
  });
});

describe('chat: what the host sends the webview', () => {
  it("a turn shows its attached chips by name only: the files' text stays on the host", () => {
    const view = conversationView({
      version: 1,
      id: 'c1',
      title: 'T',
      createdAt: 1,
      updatedAt: 2,
      turns: [
        { id: 'u', role: 'user', text: 'why?', at: 1, context: [{ kind: 'file', label: 'a.ts', path: 'src/a.ts', text: 'SECRET FILE TEXT' }] },
        { id: 'a', role: 'assistant', content: 'because', reasoning: 'hm', status: 'done', at: 2, model: 'm' },
      ],
    });
    assert.deepStrictEqual(view, {
      id: 'c1',
      title: 'T',
      turns: [
        { id: 'u', role: 'user', text: 'why?', context: [{ kind: 'file', label: 'a.ts' }] },
        { id: 'a', role: 'assistant', text: 'because', reasoning: 'hm', model: 'm', status: 'done', error: undefined, stats: undefined, notices: undefined },
      ],
    });
    assert.ok(!JSON.stringify(view).includes('SECRET'));
  });
});
