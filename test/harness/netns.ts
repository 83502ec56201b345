import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { ManagedProcess, startProcess, waitFor } from './processes';

// Peers as real separate hosts on this machine: one network namespace per peer, joined to the
// test's (root) namespace by a veth pair on its own /24, with link conditions:
//   - delay: tc netem on both veth ends when the kernel has sch_netem; otherwise (this dev VM's
//     kernel has no netem) a userspace relay inside the namespace that holds every chunk for the
//     one-way delay before passing it on (the peer's services then listen on a second, inner
//     address and the relay fronts them on the outer one);
//   - loss: netem loss, or an nftables rule dropping that share of the packets arriving on the
//     namespace's veth (real IP packet loss, repaired by TCP retransmission).
// Names start with "stcl-<pid>-": a run cleans up namespaces left by crashed runs (their pid is
// gone) before it starts, and its own in cleanup(), also when a test failed.
//
// Needs root (CAP_NET_ADMIN) and iproute2; nftables for loss without netem. When `ip` or `nft` is
// missing and we are root, they are installed with apt-get (CI). Apt packages: iproute2 nftables.

const run = promisify(execFile);
const PREFIX = 'stcl-';

export interface LinkConditions {
  /** One-way delay, ms (each direction). */
  delayMs?: number;
  /** Packet loss on the way into the peer, percent. */
  lossPercent?: number;
}

export interface NetnsSupport {
  ok: boolean;
  /** Why not, for this.skip(). */
  reason?: string;
  netem: boolean;
  nft: boolean;
}

let support: Promise<NetnsSupport> | undefined;

export function netnsSupport(): Promise<NetnsSupport> {
  support ??= probeSupport();
  return support;
}

async function probeSupport(): Promise<NetnsSupport> {
  const none = (reason: string): NetnsSupport => ({ ok: false, reason, netem: false, nft: false });
  if (process.platform !== 'linux') return none('network namespaces are Linux-only');
  if (process.getuid?.() !== 0) return none('not root: network namespaces and veth pairs need CAP_NET_ADMIN (CI runs as root)');
  if (!has('ip') || !has('nft')) await aptInstall(['iproute2', 'nftables']);
  if (!has('ip')) return none('`ip` (iproute2) is missing and could not be installed');
  const probe = `${PREFIX}probe-${process.pid}`;
  try {
    await ip(['netns', 'add', probe]);
  } catch (e) {
    return none(`cannot create a network namespace: ${(e as Error).message.split('\n')[0]}`);
  }
  let netem = false;
  try {
    await ip(['-n', probe, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1']);
    await run('tc', ['-n', probe, 'qdisc', 'add', 'dev', 'p0', 'root', 'netem', 'delay', '1ms']);
    netem = true;
  } catch {
    /* no sch_netem in this kernel */
  } finally {
    await ip(['netns', 'del', probe]).catch(() => undefined);
  }
  return { ok: true, netem, nft: has('nft') };
}

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function aptInstall(pkgs: string[]): Promise<void> {
  if (!has('apt-get')) return;
  process.stderr.write(`[netns] apt-get install ${pkgs.join(' ')}\n`);
  try {
    await run('apt-get', ['install', '-y', '-qq', ...pkgs], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 180_000 });
  } catch {
    await run('apt-get', ['update', '-qq'], { timeout: 180_000 }).catch(() => undefined);
    await run('apt-get', ['install', '-y', '-qq', ...pkgs], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 180_000 }).catch(
      () => undefined,
    );
  }
}

async function ip(args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: 20_000 });
  return stdout;
}

/** Deletes namespaces of crashed runs (owner pid gone); with all=true also this run's. */
export async function cleanupStaleNamespaces(): Promise<string[]> {
  const removed: string[] = [];
  let list = '';
  try {
    list = await ip(['netns', 'list']);
  } catch {
    return removed;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    const m = new RegExp(`^${PREFIX}(?:probe-)?(\\d+)`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && alive(pid)) continue;
    if (pid === process.pid) continue;
    await killNamespaceProcesses(name);
    await ip(['netns', 'del', name]).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function killNamespaceProcesses(ns: string): Promise<void> {
  try {
    const pids = (await ip(['netns', 'pids', ns]))
      .split('\n')
      .map(Number)
      .filter((n) => n > 0);
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  } catch {
    /* no such namespace */
  }
}

export interface PeerHost {
  index: number;
  ns: string;
  /** Where the sidecar (root namespace) reaches this host's services. */
  addr: string;
  /** Where services inside bind: addr itself with netem, the inner address behind the relay without. */
  bindAddr: string;
  /** The root namespace's address on this link. */
  gateway: string;
  conditions: LinkConditions;
  /** How the delay is made: 'netem' | 'relay' | 'none'. */
  delayBy: 'netem' | 'relay' | 'none';
  /** Runs a command inside the namespace (killed with the test run). */
  exec(cmd: string, args: string[], opts?: { env?: NodeJS.ProcessEnv }): ManagedProcess;
  /** Ports the delay relay forwards from addr to bindAddr (call before clients connect). */
  expose(ports: number[]): Promise<void>;
  /** Pulls (false) or plugs back (true) the cable. */
  setLink(up: boolean): Promise<void>;
  /** Kills every process in the namespace (a crash of the whole box). */
  killAll(): Promise<void>;
}

export class NetnsLab {
  readonly hosts: PeerHost[] = [];
  private readonly procs: ManagedProcess[] = [];
  private readonly tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-netns-'));
  private relayScript?: string;

  constructor(private readonly support: NetnsSupport) {}

  /** One namespace per entry; /24s not in use on this machine. */
  async addHosts(conditions: LinkConditions[]): Promise<PeerHost[]> {
    const used = await ip(['-o', '-4', 'addr', 'show']).catch(() => '');
    let slot = 20;
    const out: PeerHost[] = [];
    for (const c of conditions) {
      while (used.includes(`10.213.${slot}.`)) slot++;
      out.push(await this.addHost(this.hosts.length, slot++, c));
    }
    return out;
  }

  private async addHost(index: number, slot: number, cond: LinkConditions): Promise<PeerHost> {
    const ns = `${PREFIX}${process.pid}-${index}`;
    const hv = `sc${process.pid}h${index}`.slice(0, 15);
    const pv = `sc${process.pid}p${index}`.slice(0, 15);
    const net = `10.213.${slot}`;
    await ip(['netns', 'add', ns]);
    await ip(['link', 'add', hv, 'type', 'veth', 'peer', 'name', pv]);
    await ip(['link', 'set', pv, 'netns', ns]);
    await ip(['addr', 'add', `${net}.1/24`, 'dev', hv]);
    await ip(['link', 'set', hv, 'up']);
    await ip(['-n', ns, 'addr', 'add', `${net}.2/24`, 'dev', pv]);
    await ip(['-n', ns, 'link', 'set', pv, 'up']);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    const wantDelay = (cond.delayMs ?? 0) > 0;
    const wantLoss = (cond.lossPercent ?? 0) > 0;
    let delayBy: PeerHost['delayBy'] = 'none';
    let bindAddr = `${net}.2`;
    if (this.support.netem && (wantDelay || wantLoss)) {
      const d = wantDelay ? ['delay', `${cond.delayMs}ms`] : [];
      await run('tc', ['-n', ns, 'qdisc', 'add', 'dev', pv, 'root', 'netem', ...d]);
      await run('tc', ['qdisc', 'add', 'dev', hv, 'root', 'netem', ...d, ...(wantLoss ? ['loss', `${cond.lossPercent}%`] : [])]);
      if (wantDelay) delayBy = 'netem';
    } else {
      if (wantLoss) {
        if (!this.support.nft) throw new Error('packet loss needs tc netem or nftables (apt-get install nftables)');
        const per1000 = Math.max(1, Math.round((cond.lossPercent ?? 0) * 10));
        const rules = `table inet stcl_loss {\n  chain in { type filter hook input priority 0; policy accept; iifname "${pv}" numgen random mod 1000 < ${per1000} drop; }\n}\n`;
        await run('ip', ['netns', 'exec', ns, 'nft', '-f', writeTmp(this.tmp, `loss-${index}.nft`, rules)]);
      }
      if (wantDelay) {
        delayBy = 'relay';
        bindAddr = `${net}.3`;
        await ip(['-n', ns, 'addr', 'add', `${net}.3/32`, 'dev', 'lo']);
      }
    }
    const host: PeerHost = {
      index,
      ns,
      addr: `${net}.2`,
      bindAddr,
      gateway: `${net}.1`,
      conditions: cond,
      delayBy,
      exec: (cmd, args, opts) => {
        const p = startProcess('ip', ['netns', 'exec', ns, cmd, ...args], { env: opts?.env ?? process.env });
        this.procs.push(p);
        return p;
      },
      expose: async (ports) => {
        if (delayBy !== 'relay') return;
        const relay = host.exec(process.execPath, [this.relay(), String(cond.delayMs), `${net}.2`, `${net}.3`, ...ports.map(String)]);
        await waitFor(`delay relay in ${ns}`, async () => (relay.logText().includes('relay ready') ? true : undefined), {
          timeoutMs: 10_000,
          proc: relay,
          intervalMs: 50,
        });
      },
      setLink: async (up) => {
        await ip(['-n', ns, 'link', 'set', pv, up ? 'up' : 'down']);
      },
      killAll: () => killNamespaceProcesses(ns),
    };
    this.hosts.push(host);
    return host;
  }

  /** Stops every process started in the namespaces and deletes them. Safe to call twice. */
  async cleanup(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop(2000).catch(() => undefined)));
    for (const h of this.hosts.splice(0)) {
      await killNamespaceProcesses(h.ns);
      await ip(['netns', 'del', h.ns]).catch(() => undefined);
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }

  private relay(): string {
    this.relayScript ??= writeTmp(this.tmp, 'delay-relay.js', RELAY_JS);
    return this.relayScript;
  }
}

function writeTmp(dir: string, name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

// argv: delayMs outerAddr innerAddr port...; every chunk waits delayMs before it is passed on,
// in order, in both directions; a FIN (or a reset, as a close) follows after the same delay.
const RELAY_JS = String.raw`
const net = require('net');
const [delay, outer, inner, ...ports] = process.argv.slice(2);
const d = Number(delay);
// Node timers have 1 ms granularity: the last stretch before a chunk is due is waited out with
// setImmediate (busy only while something is in flight), so 0.2 ms means 0.2 ms.
const queue = [];
let armed = false;
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
function pump() {
  armed = false;
  const t = nowMs();
  while (queue.length && queue[0].due <= t) queue.shift().fn();
  if (!queue.length) return;
  armed = true;
  const left = queue[0].due - t;
  if (left > 1.5) setTimeout(pump, Math.floor(left - 1));
  else setImmediate(pump);
}
const later = (fn) => { queue.push({ due: nowMs() + d, fn }); if (!armed) pump(); };
let ready = 0;
for (const port of ports.map(Number)) {
  net.createServer({ allowHalfOpen: true }, (a) => {
    a.setNoDelay(true);
    const b = net.connect({ host: inner, port, allowHalfOpen: true });
    b.setNoDelay(true);
    const wire = (from, to) => {
      let ended = false;
      from.on('data', (buf) => later(() => { if (!to.destroyed) to.write(buf); }));
      from.on('end', () => { ended = true; later(() => to.end()); });
      from.on('error', () => undefined);
      from.on('close', () => { if (!ended) later(() => to.destroy()); });
    };
    wire(a, b);
    wire(b, a);
  }).listen(port, outer, () => { if (++ready === ports.length) console.log('relay ready'); });
}
`;
