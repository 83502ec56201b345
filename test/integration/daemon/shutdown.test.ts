import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { ServerPlan } from '../../../src/core/protocol';
import { SidecarClient } from '../../../src/core/daemonClient';
import { readSidecarLock, sidecarLockPath } from '../../../src/core/daemonClient/lockFile';
import { isPidAlive } from '../../../src/core/daemonClient/processInfo';
import { ensureTinyModel } from '../../fixtures/models';
import { cleanupStateDir, connectTestSidecar, makeStateDir, tinyPlan, waitUntil } from '../../harness/sidecar';
import { linuxOnly } from '../../harness/skips';

// A daemon on its way out and a window coming back at that moment, with the real daemon bundle
// and the real llama-server: never two llama-servers (two models in memory) at once, and every
// window on one daemon in the end. The old llama-server is frozen with SIGSTOP while it stops
// (fault injection: a server slow to exit, e.g. one paging a big model out), so the daemon's stop
// takes its full grace time and a window has every chance to come back in the middle of it.

const STOP_GRACE_MS = 4000;

/** llama-servers whose parent runs with this state dir (a daemon of it), from /proc. */
function llamaServersOf(stateDir: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'llama-server') continue;
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (fs.readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0').includes(stateDir)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Counts this state dir's llama-servers every 20 ms: the most that ever ran at once. */
function watchLlamaServers(stateDir: string): { readonly most: number; stop(): void } {
  let most = 0;
  const t = setInterval(() => {
    most = Math.max(most, llamaServersOf(stateDir).length);
  }, 20);
  return {
    get most() {
      return most;
    },
    stop: () => clearInterval(t),
  };
}

function daemonLog(stateDir: string): string {
  try {
    return fs.readFileSync(path.join(stateDir, 'sidecar.log'), 'utf8');
  } catch {
    return '';
  }
}

const backOn = (c: SidecarClient, not: number) =>
  new Promise<number>((resolve) => {
    const on = (s: { daemon: { pid: number } }) => {
      if (s.daemon.pid === not) return;
      c.off('connected', on);
      resolve(s.daemon.pid);
    };
    c.on('connected', on);
  });

describe('sidecar shutdown: one llama-server at a time', function () {
  this.timeout(180_000);
  linuxOnly("the sidecar daemon's process handling (process groups, /proc)");
  let plan: ServerPlan;
  let stateDir: string;
  const clients: SidecarClient[] = [];
  let watch: ReturnType<typeof watchLlamaServers> | undefined;

  before(async () => {
    plan = await tinyPlan(await ensureTinyModel());
  });
  beforeEach(() => {
    stateDir = makeStateDir();
  });
  afterEach(async () => {
    watch?.stop();
    watch = undefined;
    await cleanupStateDir(stateDir, clients.splice(0));
  });

  const connect = async (extra: Parameters<typeof connectTestSidecar>[1] = {}) => {
    const c = await connectTestSidecar(stateDir, { ...extra, daemonConfig: { stopGraceMs: STOP_GRACE_MS, ...(extra.daemonConfig ?? {}) } });
    clients.push(c);
    return c;
  };

  /** Loads the model in `c` and freezes its llama-server; returns the daemon's and the server's pid. */
  const loadAndFreeze = async (c: SidecarClient) => {
    const server = (await c.load(plan)).endpoint!.pid;
    const daemon = c.lastKnownStatus!.daemon.pid;
    watch = watchLlamaServers(stateDir);
    process.kill(server, 'SIGSTOP');
    return { daemon, server };
  };

  it('stop message: the other window comes back during the stop, waits, and loads on the next daemon', async () => {
    const a = await connect({ clientName: 'window A' });
    const b = await connect({ clientName: 'window B' });
    const old = await loadAndFreeze(a);
    const bBack = backOn(b, old.daemon);
    const t0 = Date.now();
    await a.shutdown();
    const next = await bBack;
    const backMs = Date.now() - t0;
    // What a window does on its next completion: ask for its model.
    const st = await b.load(plan);
    assert.strictEqual(watch!.most, 1, `${watch!.most} llama-servers ran at once`);
    assert.ok(!isPidAlive(old.server), 'the old llama-server must be gone before the next one loads');
    assert.ok(backMs >= STOP_GRACE_MS - 500, `window B was on a new daemon ${backMs} ms after the stop began, while the old llama-server still ran`);
    await waitUntil('window A on the same daemon', () => a.lastKnownStatus?.daemon.pid === next, 15_000);
    assert.deepStrictEqual(llamaServersOf(stateDir), [st.endpoint!.pid]);
    assert.strictEqual(readSidecarLock(stateDir)!.pid, next);
    assert.ok(!isPidAlive(old.daemon));
    console.log(`      (window back on the next daemon ${backMs} ms after the stop message; old server's stop took the ${STOP_GRACE_MS} ms grace)`);
  });

  it('idle exit: a window opened during the stop waits for it, then gets the next daemon', async () => {
    const a = await connect({ clientName: 'last window', daemonConfig: { idleExitMs: 500 } });
    const old = await loadAndFreeze(a);
    a.close();
    await waitUntil('the idle shutdown to begin', () => /shutting down: no client/.test(daemonLog(stateDir)), 10_000);
    const c = await connect({ clientName: 'new window' });
    const st = await c.load(plan);
    assert.strictEqual(watch!.most, 1, `${watch!.most} llama-servers ran at once`);
    assert.notStrictEqual(c.lastKnownStatus!.daemon.pid, old.daemon);
    assert.ok(!isPidAlive(old.server) && !isPidAlive(old.daemon));
    assert.deepStrictEqual(llamaServersOf(stateDir), [st.endpoint!.pid]);
  });

  it('a daemon started while another still runs its llama-server without the lock (an older Strata) waits for it', async () => {
    const a = await connect({ clientName: 'window A' });
    const old = await loadAndFreeze(a);
    // What an older daemon did at the start of its shutdown: the lock goes, llama-server stays.
    fs.rmSync(sidecarLockPath(stateDir));
    // A window opens and asks for its model at once.
    const opening = connect({ clientName: 'new window' }).then(async (c) => ({ c, st: await c.load(plan) }));
    opening.catch(() => undefined);
    const waits = () => /waiting for sidecar pid \d+ to stop its llama-server/.test(daemonLog(stateDir));
    await waitUntil('the new daemon to wait (or a second llama-server)', () => waits() || watch!.most > 1, 20_000);
    assert.strictEqual(watch!.most, 1, `${watch!.most} llama-servers ran at once`);
    assert.strictEqual(readSidecarLock(stateDir), undefined, 'the new daemon must not claim the lock before the old server is gone');
    await a.shutdown();
    const { c, st } = await opening;
    assert.ok(!isPidAlive(old.server));
    assert.strictEqual(watch!.most, 1, `${watch!.most} llama-servers ran at once`);
    assert.deepStrictEqual(llamaServersOf(stateDir), [st.endpoint!.pid]);
    await waitUntil('window A on the same daemon', () => a.lastKnownStatus?.daemon.pid === c.lastKnownStatus!.daemon.pid, 15_000);
  });
});
