import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { HistoryStore } from '../../../src/core/chat/historyStore';
import { HostToWebview } from '../../../src/core/chat/webviewProtocol';
import { readServerModel } from '../../../src/core/llama/serverModel';
import { ChatController } from '../../../src/vscode/chat/chatController';
import { ChatServer } from '../../../src/vscode/chat/chatServer';
import type { ProposalManager } from '../../../src/vscode/chat/codeActions';
import { languageModelProvider } from '../../../src/vscode/chat/lmProvider';
import { ServerChange, ServerConnectionSource } from '../../../src/vscode/serverConnectionSource';

// One lifetime per server (issue 15): when the chat role's server changes because the daemon
// reports a model placed on a peer (no server.json involved), the chat's status and the
// language-model provider follow at once, with the model's /props read once. Before, both
// refreshed only from the server.json watcher, so a placement never reached them.

describe('server lifetime: a daemon-reported server reaches chat status and the language-model provider', function () {
  this.timeout(300_000);
  let llama: { url: string; apiKey: string; stop(): Promise<void> };
  const CTX = 3072;

  before(async () => {
    // The cached CPU build, found through the extension (test/harness/llamaServer.ts does not
    // bundle into the extension host: its binaries module reads import.meta).
    const build = await vscode.commands.executeCommand<{ serverPath: string } | undefined>('strata.server.build', 'cpu');
    assert.ok(build, 'no llama-server build (see the Strata log)');
    const { ensureTinyModel } = await import('../../fixtures/models');
    const { startProcess, waitFor: until } = await import('../../harness/processes');
    const { writeSecretFile } = await import('../../../src/core/secretFile');
    const { pickFreePort } = await import('../../../src/daemon/ports');
    const port = await pickFreePort();
    const apiKey = 'lifetime-test-key';
    const keyFile = writeSecretFile(apiKey);
    const proc = startProcess(build.serverPath, [
      '-m',
      await ensureTinyModel(),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--api-key-file',
      keyFile.path,
      '-c',
      String(CTX),
      '--no-repack',
      '-t',
      '2',
      '--no-webui',
    ]);
    void proc.exited.then(() => keyFile.remove());
    const url = `http://127.0.0.1:${port}`;
    await until('llama-server readiness', async () => ((await fetch(`${url}/health`).catch(() => undefined))?.status === 200 ? true : undefined), {
      timeoutMs: 120_000,
      proc,
    });
    llama = { url, apiKey, stop: () => proc.stop() };
  });

  after(async () => {
    await llama?.stop();
  });

  it('a placement for chat updates the chat status and asks VS Code to re-read the model, without touching server.json', async () => {
    const source = new ServerConnectionSource();
    const log = vscode.window.createOutputChannel('Strata lifetime test', { log: true });
    // The extension's ProposalManager holds the proposal commands; this controller never applies code.
    const proposals = {} as ProposalManager;
    const memento = { get: () => undefined, update: async () => undefined, keys: () => [] } as unknown as vscode.Memento;
    const store = new HistoryStore(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-lifetime-')));
    const server = new ChatServer(source, log);
    const chat = new ChatController(server, log, store, proposals, memento);
    const posted: HostToWebview[] = [];
    chat.attach({ post: (m) => posted.push(m), reveal: async () => undefined, setDescription: () => undefined });
    const lm = languageModelProvider(
      source,
      class {
        constructor(readonly value: string) {}
      },
    );
    let lmChanged = 0;
    const changes: ServerChange[] = [];
    const subs = [lm.onDidChangeLanguageModelChatInformation!(() => lmChanged++), source.onDidChangeServer((c) => changes.push(c))];
    try {
      const serverJson = source.file();
      assert.ok(!fs.existsSync(serverJson), `${serverJson} exists: this test is about servers the file does not name`);
      const token = new vscode.CancellationTokenSource().token;
      assert.deepStrictEqual(await lm.provideLanguageModelChatInformation({}, token), [], 'no server yet: no model offered');

      // What SidecarController does when the daemon says chat is served by a peer's model.
      source.setPlaced('chat', { url: llama.url, apiKey: llama.apiKey, model: 'tiny on box2' });
      await waitFor(
        () => posted.some((m) => m.type === 'status' && m.contextSize === CTX),
        15_000,
        () => `chat status never showed the placed server: ${JSON.stringify(posted)}`,
      );
      await waitFor(
        () => lmChanged > 0,
        5000,
        () => 'the language-model provider was not told that the chat model changed',
      );
      const status = posted.find((m) => m.type === 'status' && m.contextSize === CTX);
      assert.ok(status?.type === 'status' && /^tiny-qwen2/.test(status.model ?? '') && !status.error, JSON.stringify(status));
      const [info] = await lm.provideLanguageModelChatInformation({}, token);
      assert.match(info.name, /^tiny-qwen2.* \(Strata\)$/);
      assert.strictEqual(info.maxInputTokens, CTX - CTX / 4, 'the context size came from /props, not the fallback');
      assert.match(info.tooltip ?? '', new RegExp(llama.url.replace(/[.:/]/g, '\\$&')));

      // The event carried the model, read once: everyone after it gets the same answer from memory.
      const chatChange = changes.find((c) => c.role === 'chat' && c.server);
      assert.ok(chatChange?.server?.model, 'the change event carries the model');
      assert.strictEqual(await readServerModel(chatChange.server.client, 1000), chatChange.server.model);
      assert.ok(!changes.some((c) => c.role === 'fim' && c.server), 'completions were not placed: their server did not change');

      // The placement goes: chat falls back to the local server; here there is none.
      const before = lmChanged;
      posted.length = 0;
      source.setPlaced('chat', undefined);
      await waitFor(
        () => posted.some((m) => m.type === 'status' && !!m.error),
        5000,
        () => `chat status did not say the server went: ${JSON.stringify(posted)}`,
      );
      assert.ok(lmChanged > before, 'the language-model provider was not told that the model went');
      assert.deepStrictEqual(await lm.provideLanguageModelChatInformation({}, token), []);
      assert.ok(!fs.existsSync(serverJson));
    } finally {
      for (const s of subs) s.dispose();
      chat.dispose();
      server.dispose();
      source.dispose();
      log.dispose();
    }
  });
});

async function waitFor(check: () => boolean, ms: number, why: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(why());
    await new Promise((r) => setTimeout(r, 50));
  }
}
