import * as assert from 'assert';
import { isSafeExternalLink, parseFromWebview } from '../../../src/core/chat/webviewProtocol';

describe('chat: messages from the webview are validated', () => {
  it('accepts well-formed messages', () => {
    assert.deepStrictEqual(parseFromWebview({ type: 'send', text: 'hi' }), { type: 'send', text: 'hi', replaceLast: false });
    assert.deepStrictEqual(parseFromWebview({ type: 'codeAction', action: 'apply', code: 'x', lang: 'ts' }), { type: 'codeAction', action: 'apply', code: 'x', lang: 'ts' });
    assert.deepStrictEqual(parseFromWebview({ type: 'stop', extra: 1 }), { type: 'stop' });
  });

  it('rejects unknown types, wrong field types and unknown actions', () => {
    for (const m of [null, 1, 'send', {}, { type: 'eval', code: 'x' }, { type: 'send', text: 5 }, { type: 'codeAction', action: 'run', code: 'x' }, { type: 'openLink' }]) {
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
