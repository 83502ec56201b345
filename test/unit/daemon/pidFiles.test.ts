import * as assert from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isPidAlive, isSameProcess, processStartTime } from '../../../src/core/daemonClient/processInfo';
import { ChildRecord, ChildRegistry, judgeRecord } from '../../../src/daemon/childRegistry';
import { linuxOnly } from '../../harness/skips';

// The pid-file fallback must kill a dead daemon's llama-server and must never kill a process
// that merely has a recorded pid now. Real processes (sleep) stand in for llama-server.

function deadPid(): number {
  const r = spawnSync('true');
  return r.pid!;
}

async function gone(pid: number, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!isPidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !isPidAlive(pid);
}

describe('sidecar pid files (adopt-or-kill)', function () {
  linuxOnly('pid records carry /proc start times and the boot id');
  let dir: string;
  let reg: ChildRegistry;
  const kids: ChildProcess[] = [];
  const sleeper = () => {
    const c = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    kids.push(c);
    return c.pid!;
  };
  /** A record as a dead daemon would have left it. */
  const orphanRecord = (pid: number, patch: Partial<ChildRecord> = {}): ChildRecord => {
    const rec = reg.record(pid, '/bin/sleep');
    const out = { ...rec, daemonPid: deadPid(), daemonStartTime: '1', ...patch };
    fs.writeFileSync(path.join(reg.dir, `${pid}.json`), JSON.stringify(out));
    return out;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pidfiles-'));
    reg = new ChildRegistry(path.join(dir, 'children'));
  });
  afterEach(() => {
    for (const k of kids.splice(0))
      try {
        k.kill('SIGKILL');
      } catch {
        /* gone */
      }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('records pid, real executable, start time and boot id, mode 0600', () => {
    const pid = sleeper();
    const rec = reg.record(pid, '/bin/sleep');
    assert.strictEqual(rec.exe, fs.realpathSync('/bin/sleep'));
    assert.strictEqual(rec.startTime, processStartTime(pid));
    assert.ok(rec.bootId && rec.bootId.length > 10);
    assert.strictEqual(fs.statSync(path.join(reg.dir, `${pid}.json`)).mode & 0o777, 0o600);
    assert.deepStrictEqual(
      reg.list().map((r) => r.pid),
      [pid],
    );
  });

  it('a child whose daemon is alive is owned, not stale', () => {
    const pid = sleeper();
    const rec = reg.record(pid, '/bin/sleep');
    assert.strictEqual(judgeRecord(rec), 'owned');
  });

  it('kills a stale child that is provably ours, and forgets its file', async () => {
    const pid = sleeper();
    orphanRecord(pid);
    assert.strictEqual(judgeRecord(reg.list()[0]), 'ours');
    const res = await reg.reapStale({ graceMs: 2000 });
    assert.deepStrictEqual(
      res.map((r) => r.verdict),
      ['ours'],
    );
    assert.ok(await gone(pid), 'stale child still alive');
    assert.deepStrictEqual(reg.list(), []);
  });

  it('never kills a recycled pid (other start time)', async () => {
    const pid = sleeper();
    orphanRecord(pid, { startTime: '12345' });
    const res = await reg.reapStale({ graceMs: 500 });
    assert.deepStrictEqual(
      res.map((r) => r.verdict),
      ['stranger'],
    );
    assert.ok(isPidAlive(pid), 'a stranger was killed');
    assert.deepStrictEqual(reg.list(), []);
  });

  it('never kills a pid that runs another executable now', async () => {
    const pid = sleeper();
    orphanRecord(pid, { exe: '/usr/local/bin/llama-server' });
    assert.strictEqual(judgeRecord(reg.list()[0]), 'stranger');
    await reg.reapStale({ graceMs: 500 });
    assert.ok(isPidAlive(pid));
  });

  it('never kills when a start time cannot be proven', async () => {
    const pid = sleeper();
    const rec = orphanRecord(pid);
    delete rec.startTime;
    fs.writeFileSync(path.join(reg.dir, `${pid}.json`), JSON.stringify(rec));
    assert.strictEqual(judgeRecord(reg.list()[0]), 'stranger');
  });

  it('forgets records of processes that are gone, and half-written files', async () => {
    const pid = deadPid();
    fs.mkdirSync(reg.dir, { recursive: true });
    fs.writeFileSync(path.join(reg.dir, `${pid}.json`), JSON.stringify({ pid, exe: '/x', daemonPid: deadPid(), startTime: '1', startedAt: 0 }));
    fs.writeFileSync(path.join(reg.dir, '99999999.json'), '{"pid": 9');
    const res = await reg.reapStale();
    assert.deepStrictEqual(
      res.map((r) => r.verdict),
      ['gone'],
    );
    assert.deepStrictEqual(fs.readdirSync(reg.dir), []);
  });

  it('isSameProcess tells a live process from its recorded identity', () => {
    const pid = sleeper();
    const st = processStartTime(pid);
    assert.ok(isSameProcess({ pid, startTime: st }));
    assert.ok(!isSameProcess({ pid, startTime: `${st}0` }));
    assert.ok(!isSameProcess({ pid: deadPid(), startTime: st }));
    assert.ok(!isSameProcess({ pid, startTime: st, bootId: 'another-boot' }));
  });
});
