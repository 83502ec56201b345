import * as assert from 'assert';
import { ChildProcess, spawn } from 'child_process';
import { isPidAlive, processStartTime } from '../../../src/core/daemonClient/processInfo';
import { startWatchdog } from '../../../src/daemon/watchdog';
import { skipSuiteIf } from '../../harness/skips';

// The watchdog's trigger is EOF on its stdin pipe, which the kernel delivers when the daemon
// dies. Here the test process plays the daemon; destroying its end of the pipe is the same EOF.

async function until(check: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

describe('sidecar watchdog', function () {
  skipSuiteIf(process.platform === 'win32' && 'not on Windows: the watchdog kills with POSIX signals');
  const kids: ChildProcess[] = [];
  const sleeper = () => {
    const c = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    kids.push(c);
    return c.pid!;
  };
  afterEach(() => {
    for (const k of kids.splice(0))
      try {
        k.kill('SIGKILL');
      } catch {
        /* gone */
      }
  });

  it('kills the child as soon as its daemon end of the pipe closes', async () => {
    const pid = sleeper();
    await until(() => processStartTime(pid) !== undefined, 2000);
    const wd = startWatchdog(pid, processStartTime(pid));
    assert.ok(wd.pid);
    await new Promise((r) => setTimeout(r, 100));
    wd.closePipe();
    const ms = await until(() => !isPidAlive(pid), 2000);
    assert.ok(ms < 1000, `took ${ms} ms`);
  });

  it('lets the child live after release ("done")', async () => {
    const pid = sleeper();
    const wd = startWatchdog(pid, processStartTime(pid));
    wd.release();
    await until(() => !isPidAlive(wd.pid!), 2000);
    assert.ok(isPidAlive(pid));
  });

  it('does not kill a recycled pid (start time differs)', async () => {
    const pid = sleeper();
    const wd = startWatchdog(pid, '1');
    wd.closePipe();
    await until(() => !isPidAlive(wd.pid!), 2000);
    assert.ok(isPidAlive(pid));
  });
});
