// Fake server note: a stand-in HTTP server writes the event streams here, to cut them where llama-server never does (inside a character, between \r and \n, a last line without its newline).
import * as assert from 'assert';
import * as http from 'http';
import { LlamaClient } from '../../../src/core/llama/client';
import { ServerSentEventParser } from '../../../src/core/llama/serverSentEvents';

// Both ways the client reads llama-server's streams (node:http for /infill, fetch for chat) go
// through one parser; these pin down what it accepts.

describe('llama: server-sent events', () => {
  it('cuts data lines across chunks, with \\n or \\r\\n ends, and keeps a last line without a newline', () => {
    const p = new ServerSentEventParser();
    const out: string[] = [];
    for (const chunk of ['data: {"a"', ':1}\r', '\n\r\nevent: x\ndata:{"b":2}\n', ': comment\ndata:  [DONE]  ', '']) out.push(...p.push(chunk));
    assert.deepStrictEqual(out, ['{"a":1}', '{"b":2}']);
    assert.strictEqual(p.end(), '[DONE]');
    assert.strictEqual(p.end(), undefined, 'end() hands the rest over once');
  });

  it('infillStream and chatStream read the same awkwardly cut stream alike', async () => {
    const text = 'déjà vu ✓';
    // Every chunk boundary falls somewhere unkind: inside a multi-byte character, between \r and \n.
    const cut = (body: string) => {
      const b = Buffer.from(body, 'utf8');
      const parts: Buffer[] = [];
      for (let i = 0; i < b.length; i += 3) parts.push(b.subarray(i, i + 3));
      return parts;
    };
    const pieces = [...text];
    const srv = http.createServer((req, res) => {
      req.resume();
      req.on('end', async () => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        const lines =
          req.url === '/infill'
            ? [
                ...pieces.map((c) => `data: ${JSON.stringify({ content: c, stop: false })}\r\n\r\n`),
                `data: ${JSON.stringify({ content: '', stop: true, stop_type: 'eos' })}`,
              ]
            : [...pieces.map((c) => `data: ${JSON.stringify({ choices: [{ delta: { content: c } }] })}\r\n\r\n`), 'data: [DONE]'];
        for (const part of cut(lines.join(''))) {
          res.write(part);
          await new Promise((r) => setImmediate(r));
        }
        res.end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const client = new LlamaClient({ url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, apiKey: 'k' });
      const infill = await client.infillStream({ input_prefix: '', input_suffix: '', n_predict: 8 });
      assert.strictEqual(infill.content, text);
      assert.strictEqual(infill.stop_type, 'eos', 'the last event, without a newline, still counts');
      let chat = '';
      for await (const d of client.chatStream([{ role: 'user', content: 'hi' }])) chat += d.content ?? '';
      assert.strictEqual(chat, text);
    } finally {
      srv.close();
    }
  });
});
