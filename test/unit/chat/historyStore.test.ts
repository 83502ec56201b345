import * as assert from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { newConversation, parseConversation } from '../../../src/core/chat/conversation';
import { atomicWrite, HistoryStore } from '../../../src/core/chat/historyStore';

describe('chat: history store', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-history-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('saves, lists newest first, loads, renames, deletes, clears', async () => {
    const store = new HistoryStore(dir);
    const a = newConversation(1000);
    a.turns.push({ id: 'u', role: 'user', text: 'hello', context: [], at: 1 });
    a.turns.push({ id: 'a', role: 'assistant', content: 'hi', status: 'done', model: 'tiny', at: 2 });
    a.model = 'tiny';
    a.updatedAt = 1000;
    const b = newConversation(2000);
    b.updatedAt = 2000;
    await store.save(a);
    await store.save(b);
    assert.deepStrictEqual(
      (await store.list()).map((s) => s.id),
      [b.id, a.id],
    );
    // A second store (another window, or after a reload) sees the same.
    const again = new HistoryStore(dir);
    const loaded = await again.load(a.id);
    assert.deepStrictEqual(loaded, { ...a, titleSetByUser: false });
    assert.strictEqual((await again.list())[1].model, 'tiny', 'remembers which model answered');

    const renamed = await again.rename(a.id, '  My chat ');
    assert.strictEqual(renamed?.title, 'My chat');
    assert.strictEqual(renamed?.titleSetByUser, true);
    await again.delete(b.id);
    assert.deepStrictEqual(
      (await again.list()).map((s) => s.title),
      ['My chat'],
    );
    assert.strictEqual(await again.clear(), 1);
    assert.deepStrictEqual(await new HistoryStore(dir).list(), []);
  });

  it('keeps an answer that was streaming when the window died, marked stopped', async () => {
    const c = newConversation();
    c.turns.push({ id: 'a', role: 'assistant', content: 'partial', status: 'streaming', at: 1 });
    await new HistoryStore(dir).save(c);
    const loaded = await new HistoryStore(dir).load(c.id);
    assert.strictEqual(loaded?.turns[0].role === 'assistant' && loaded.turns[0].status, 'stopped');
  });

  it('skips unreadable files and rejects ids that are not plain names', async () => {
    fs.writeFileSync(path.join(dir, 'broken.json'), '{ not json');
    fs.writeFileSync(path.join(dir, 'other.json'), JSON.stringify({ hello: 1 }));
    const store = new HistoryStore(dir);
    assert.deepStrictEqual(await store.list(), []);
    assert.ok(fs.existsSync(path.join(dir, 'broken.json')), 'an unreadable file is kept, not deleted');
    await assert.rejects(store.load('../../etc/passwd'));
    assert.strictEqual(parseConversation({ id: '../x', title: 't', turns: [], version: 1 }), undefined);
  });

  it('serializes concurrent saves of one conversation: the last one wins', async () => {
    const store = new HistoryStore(dir);
    const c = newConversation();
    const saves = [];
    for (let i = 0; i < 20; i++) {
      c.title = `v${i}`;
      saves.push(store.save({ ...c, turns: [] }));
    }
    await Promise.all(saves);
    assert.strictEqual((await new HistoryStore(dir).load(c.id))?.title, 'v19');
    assert.deepStrictEqual(fs.readdirSync(dir), [`${c.id}.json`], 'no temporary files left');
  });

  it('a process killed mid-write never leaves a torn file (SIGKILL at random moments)', async () => {
    const writer = path.join(__dirname, 'fixtures', 'historyWriter.ts');
    const file = path.join(dir, 'crash-test.json');
    let lastVersion = -1;
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
      });
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 300));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const text = fs.readFileSync(file, 'utf8');
      const c = parseConversation(JSON.parse(text)); // throws on a torn file
      assert.ok(c, 'the file is a whole conversation');
      const version = Number(c.title.replace('version ', ''));
      assert.strictEqual(c.turns.length, version + 1, 'title and turns come from the same write');
      lastVersion = version;
    }
    assert.ok(lastVersion >= 0);
    // Leftover temporary files are not conversations and do not show up.
    assert.deepStrictEqual(
      (await new HistoryStore(dir).list()).map((s) => s.id),
      ['crash-test'],
    );
  });

  it('atomicWrite replaces content and leaves no temporary file', async () => {
    const f = path.join(dir, 'x.json');
    await atomicWrite(f, 'one');
    await atomicWrite(f, 'two');
    assert.strictEqual(fs.readFileSync(f, 'utf8'), 'two');
    assert.deepStrictEqual(fs.readdirSync(dir), ['x.json']);
    if (process.platform !== 'win32') assert.strictEqual(fs.statSync(f).mode & 0o777, 0o600);
  });
});
