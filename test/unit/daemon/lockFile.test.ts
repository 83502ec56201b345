import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PROTOCOL_VERSION } from '../../../src/core/protocol';
import {
  isLockLive,
  readSidecarLock,
  removeSidecarLockIfOwned,
  SidecarLock,
  sidecarLockPath,
  withStateMutex,
  writeSidecarLock,
} from '../../../src/core/daemonClient/lockFile';
import { processStartTime } from '../../../src/core/daemonClient/processInfo';
import { skipBecause } from '../../harness/skips';

describe('sidecar lock file', () => {
  let dir: string;
  beforeEach(() => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-lock-')), 'state');
  });
  afterEach(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));

  const lock = (patch: Partial<SidecarLock> = {}): SidecarLock => ({
    pid: process.pid,
    port: 1234,
    token: 'secret',
    protocolVersion: PROTOCOL_VERSION,
    startedAt: Date.now(),
    processStartTime: processStartTime(process.pid),
    ...patch,
  });

  it('is written 0600 in a 0700 directory and read back', function () {
    if (process.platform === 'win32') skipBecause(this, 'not on Windows: POSIX file modes');
    writeSidecarLock(dir, lock());
    assert.strictEqual(fs.statSync(sidecarLockPath(dir)).mode & 0o777, 0o600);
    assert.strictEqual(fs.statSync(dir).mode & 0o777, 0o700);
    assert.strictEqual(readSidecarLock(dir)?.token, 'secret');
  });

  it('reads absent or damaged files as no lock', () => {
    assert.strictEqual(readSidecarLock(dir), undefined);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(sidecarLockPath(dir), '{"pid":');
    assert.strictEqual(readSidecarLock(dir), undefined);
    fs.writeFileSync(sidecarLockPath(dir), '{"pid":1}');
    assert.strictEqual(readSidecarLock(dir), undefined);
  });

  it('is live only while that very process runs', function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: process start times from /proc');
    assert.ok(isLockLive(lock()));
    assert.ok(!isLockLive(lock({ processStartTime: '1' })), 'a recycled pid must not count');
    assert.ok(!isLockLive(lock({ pid: spawnSync('true').pid! })));
  });

  it('is removed only by its owner', () => {
    writeSidecarLock(dir, lock({ pid: 42 }));
    removeSidecarLockIfOwned(dir, process.pid);
    assert.ok(fs.existsSync(sidecarLockPath(dir)));
    removeSidecarLockIfOwned(dir, 42);
    assert.ok(!fs.existsSync(sidecarLockPath(dir)));
  });

  it('withStateMutex runs holders one at a time', async () => {
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      [1, 2, 3, 4].map(() =>
        withStateMutex(dir, 'm', async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, 30));
          inside--;
        }),
      ),
    );
    assert.strictEqual(maxInside, 1);
  });
});
