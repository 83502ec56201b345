// Fake server note: a stand-in HTTP server dies in the middle of its answers here, on cue, which the real llama-server cannot be made to do at a chosen byte.
import * as assert from 'assert';
import * as http from 'http';
import * as net from 'net';
import { streamAnswer } from '../../../src/core/chat/streamAnswer';
import { LlamaClient } from '../../../src/core/llama/client';
import { isConnectionLost, isConnectionRefused } from '../../../src/core/llama/connectionErrors';
import { describeServerLoss } from '../../../src/core/daemonClient/errors';

// The errors Node really throws when llama-server goes away, on each path Strata uses (fetch for
// chat, node:http for completions), against the one list that the completion retry, the chat
// and the sidecar client share.

/** A server that answers with the start of an event stream, then drops the connection. */
async function dyingServer(): Promise<{ url: string; close: () => void }> {
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const first = req.url === '/infill' ? { content: 'a', stop: false } : { choices: [{ delta: { content: 'a' } }] };
      res.write(`data: ${JSON.stringify(first)}\n\n`, () => setTimeout(() => res.socket?.destroy(), 20));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, close: () => srv.close() };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a failure');
}

describe('llama: connection errors', () => {
  it('nothing listening: refused, not lost, on fetch and on node:http', async () => {
    const client = new LlamaClient({ url: `http://127.0.0.1:${await freePort()}`, apiKey: 'k' });
    for (const e of [await caught(client.tokenize('x')), await caught(client.infillStream({ input_prefix: '', input_suffix: '', n_predict: 1 }))]) {
      assert.ok(isConnectionRefused(e), String(e));
      assert.ok(!isConnectionLost(e), String(e));
      assert.match(describeServerLoss(e) ?? '', /not running right now/);
    }
  });

  it('a server that dies mid-answer: lost, on the completion stream and the chat stream alike', async () => {
    const srv = await dyingServer();
    try {
      const client = new LlamaClient({ url: srv.url, apiKey: 'k' });
      const infill = await caught(client.infillStream({ input_prefix: '', input_suffix: '', n_predict: 8 }));
      assert.ok(isConnectionLost(infill), String(infill));
      const chat = await caught(
        (async () => {
          for await (const d of client.chatStream([{ role: 'user', content: 'hi' }])) void d;
        })(),
      );
      assert.ok(isConnectionLost(chat), String(chat));
      for (const e of [infill, chat]) assert.match(describeServerLoss(e) ?? '', /stopped in the middle of the reply/);
    } finally {
      srv.close();
    }
  });

  it('the chat says the connection was lost when the server dies mid-answer (fetch says only "terminated")', async () => {
    const srv = await dyingServer();
    try {
      const r = await streamAnswer(new LlamaClient({ url: srv.url, apiKey: 'k' }), [{ role: 'user', content: 'hi' }], new AbortController().signal, {
        onDelta: () => undefined,
      });
      assert.strictEqual(r.status, 'error');
      assert.strictEqual(r.content, 'a');
      assert.match(r.error ?? '', /Lost the connection to llama-server.*regenerate/);
    } finally {
      srv.close();
    }
  });

  it('an abort is neither', async () => {
    const ac = new AbortController();
    ac.abort();
    const e = await caught(fetch('http://127.0.0.1:1/', { signal: ac.signal }));
    assert.ok(!isConnectionLost(e) && !isConnectionRefused(e), String(e));
    assert.strictEqual(describeServerLoss(e), undefined);
  });
});
