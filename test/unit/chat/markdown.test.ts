import * as assert from 'assert';
import { isSafeHref, renderMarkdown } from '../../../media/markdown';

// The Markdown layer alone (no DOM); the webview tests check the whole page in Chromium.
describe('chat webview: markdown rendering of untrusted text', () => {
  it('escapes raw HTML instead of passing it through', () => {
    const html = renderMarkdown('<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n<svg onload=alert(1)>');
    assert.ok(!/<script|<img|<svg/i.test(html), html);
    assert.ok(html.includes('&lt;script&gt;'));
  });

  it('renders only http(s) links as links', () => {
    const html = renderMarkdown(
      '[a](javascript:alert(1)) [b](data:text/html,<b>x</b>) [c](vbscript:x) [d](file:///etc/passwd) [e](https://example.com/x) <http://example.org> www.example.net',
    );
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    for (const h of hrefs) assert.ok(h === '' || isSafeHref(h), `unsafe href ${h} in ${html}`);
    assert.ok(hrefs.includes('https://example.com/x'));
    assert.ok(hrefs.includes('http://example.org'));
    assert.ok(!/javascript:|data:text|vbscript:|file:/.test(hrefs.join(' ')));
  });

  it('never loads images: shows their alt text', () => {
    const html = renderMarkdown('![tracking pixel](https://evil.example/p.gif) ![x](data:image/png;base64,AAAA)');
    assert.ok(!/<img/i.test(html));
    assert.ok(html.includes('[image: tracking pixel]'));
  });

  it('highlights known languages and escapes the rest', () => {
    const html = renderMarkdown('```ts\nconst a: number = 1;\n```\n\n```nosuchlang\n<b>x</b>\n```');
    assert.ok(html.includes('hljs-keyword'));
    assert.ok(html.includes('&lt;b&gt;x&lt;/b&gt;'));
  });

  it('renders an unclosed fence as code to the end', () => {
    const html = renderMarkdown('text\n```js\nlet x = 1;\n\n# not a heading');
    assert.ok(!html.includes('<h1'), html);
    assert.ok(html.includes('<pre>'));
  });

  it('isSafeHref accepts only absolute http(s) with a host', () => {
    for (const ok of ['http://a.b', 'https://x.y/z?q#f', 'HTTPS://A.B']) assert.ok(isSafeHref(ok), ok);
    for (const bad of [
      '',
      '#',
      '/local',
      'javascript:alert(1)',
      ' javascript:x',
      'data:text/html,x',
      'http:/x',
      'https://',
      'command:workbench.action.quit',
      'vscode://x',
    ]) {
      assert.ok(!isSafeHref(bad), bad);
    }
  });
});
