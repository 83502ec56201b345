import * as assert from 'assert';
import { ServerConnectionSource } from '../../../src/vscode/serverConnectionSource';

// Which llama-server a request goes to, in a real extension host (the source reads settings):
// a server placed on a peer for a role wins for that role only, and the role falls back to the
// local server the moment the placement goes.

describe('server connection source: placed servers per role', () => {
  const local = { url: 'http://127.0.0.1:41000', apiKey: 'local-key', model: 'big.gguf', pid: 1 };
  const fim = { url: 'http://127.0.0.1:42000', apiKey: 'fim-key', model: 'coder-7b.gguf on box2' };

  it('routes completions to the placed FIM server and chat to the local one, then falls back', () => {
    const src = new ServerConnectionSource();
    src.setLive(local);
    assert.strictEqual(src.current('fim').conn.url, local.url, 'nothing placed yet');
    src.setPlaced('fim', fim);
    assert.strictEqual(src.current('fim').conn.url, fim.url);
    assert.strictEqual(src.current('fim').conn.apiKey, 'fim-key');
    assert.strictEqual(src.current('chat').conn.url, local.url, 'chat is not placed: the local server');
    assert.strictEqual(src.current().conn.url, local.url, 'status and other callers: the local server');
    assert.strictEqual(src.placedFor('fim')?.model, fim.model);
    const client = src.current('fim').client;
    src.setPlaced('fim', { ...fim });
    assert.strictEqual(src.current('fim').client, client, 'the same endpoint keeps its client (and its connections)');
    src.setPlaced('fim', undefined);
    assert.strictEqual(src.current('fim').conn.url, local.url, 'placement gone: back to the local server at once');
  });

  it('a placed server answers its role even while the local server is down', () => {
    const src = new ServerConnectionSource();
    src.setDemand(() => new Error('Strata is loading the model; completions start when it is ready.'));
    src.setPlaced('chat', { url: 'http://127.0.0.1:43000', apiKey: 'chat-key' });
    assert.strictEqual(src.current('chat').conn.url, 'http://127.0.0.1:43000');
    assert.throws(() => src.current('fim'), /loading the model/);
  });
});
