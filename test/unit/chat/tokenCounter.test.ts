// Fake server note: the counter test uses a stand-in /tokenize only to inject failures (503) that the
// real llama-server cannot be made to produce on demand; the real server is counted against in the E2E test.
import * as assert from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { estimateTokens, LlamaTokenCounter } from '../../../src/core/chat/tokenCounter';

interface Sample {
  name: string;
  text: string;
  qwen2Tokens: number;
}
const samples = (JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'qwen2TokenCounts.json'), 'utf8')) as { samples: Sample[] }).samples;

describe('chat: token counting', () => {
  it('the fallback estimate never undercounts the Qwen2 tokenizer, and is not wildly high', () => {
    for (const s of samples) {
      const est = estimateTokens(s.text);
      const ratio = est / s.qwen2Tokens;
      assert.ok(ratio >= 1, `${s.name}: estimate ${est} < true ${s.qwen2Tokens}`);
      assert.ok(ratio < 2, `${s.name}: estimate ${est} is ${ratio.toFixed(2)}x the true ${s.qwen2Tokens}`);
    }
    assert.strictEqual(estimateTokens(''), 0);
  });

  it('LlamaTokenCounter counts with /tokenize, caches, and falls back to the estimate when it fails', async () => {
    let calls = 0;
    let fail = false;
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        calls++;
        if (fail || req.headers.authorization !== 'Bearer k') {
          res.writeHead(fail ? 503 : 401).end();
          return;
        }
        const { content } = JSON.parse(body) as { content: string };
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ tokens: content.split(' ').map((_, i) => i) }));
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const c = new LlamaTokenCounter({ url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, apiKey: 'k' });
      assert.strictEqual(await c.count('a b c'), 3);
      assert.strictEqual(await c.count('a b c'), 3);
      assert.strictEqual(calls, 1, 'cached');
      assert.strictEqual(c.exact, true);
      fail = true;
      const text = 'x '.repeat(50);
      assert.strictEqual(await c.count(text), estimateTokens(text));
      assert.strictEqual(c.exact, false);
    } finally {
      srv.close();
    }
  });
});
