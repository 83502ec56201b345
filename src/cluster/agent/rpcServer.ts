import * as path from 'path';
import { PeerDevice, RpcServerState, TransportMode } from '../protocol';
import { probeRpcServer, RpcDeviceMemory } from '../rpc/client';
import { formatVersion, RpcVersion } from '../rpc/protocol';
import { startTied, stopTied, TiedChild } from './child';
import { pickFreePort } from '../../daemon/ports';

// The agent's rpc-server: started on demand in the mode asked for (tunnel: bound to
// 127.0.0.1, reachable only through the agent; direct: on the LAN address the owner allowed),
// probed for devices and memory when nobody uses it, and stopped after a quiet while.

export interface RpcServerOptions {
  /** ggml-rpc-server; undefined when none was found (binaryError says why). */
  binary?: string;
  binaryError?: string;
  /** -t for the CPU device. */
  threads?: number;
  /** -d: devices to offer (e.g. ["CUDA1"]); default: rpc-server's choice (all GPUs, else CPU). */
  devices?: string[];
  /** Tensor cache: rpc-server -c with LLAMA_CACHE=<dir> (reloads skip sending known tensors). */
  cacheDir?: string;
  /** Direct mode: where to listen (a LAN address); undefined: direct mode refused. */
  directHost?: string;
  directPort: number;
  /** Stop after this long with no tunnel and no lease. 0: never. */
  idleStopMs: number;
  logDir: string;
  log: (m: string) => void;
  env?: NodeJS.ProcessEnv;
}

interface Running {
  child: TiedChild;
  mode: TransportMode;
  host: string;
  port: number;
  version?: RpcVersion;
}

export class RpcServerManager {
  private cur?: Running;
  private starting?: Promise<Running>;
  private tunnels = 0;
  private leases = 0;
  private lastUse = Date.now();
  private devices: PeerDevice[] = [];
  private names: Array<{ name: string; description: string }> = [];
  private probedAt?: number;
  private lastError?: string;
  private idleTimer?: NodeJS.Timeout;

  constructor(private readonly o: RpcServerOptions) {
    if (o.idleStopMs > 0) {
      this.idleTimer = setInterval(() => void this.checkIdle(), Math.max(250, Math.min(30_000, o.idleStopMs / 4)));
      this.idleTimer.unref();
    }
  }

  state(): RpcServerState {
    const c = this.cur;
    return {
      running: !!c && !c.child.hasExited(),
      busy: this.tunnels > 0,
      tunnels: this.tunnels,
      ...(this.o.binary ? { binary: this.o.binary } : {}),
      ...(c ? { mode: c.mode, host: c.host, port: c.port, pid: c.child.pid } : {}),
      ...(c?.version ? { version: formatVersion(c.version) } : {}),
      ...(this.o.cacheDir ? { cacheDir: this.o.cacheDir } : {}),
      ...(this.probedAt ? { probedAt: this.probedAt } : {}),
      ...((this.lastError ?? this.o.binaryError) ? { error: this.lastError ?? this.o.binaryError } : {}),
    };
  }

  deviceList(): PeerDevice[] {
    return this.devices.map((d) => ({ ...d }));
  }

  /** Running in this mode (started or restarted as needed). */
  async ensure(mode: TransportMode): Promise<RpcServerState> {
    if (!this.o.binary) throw new Error(this.o.binaryError ?? 'No ggml-rpc-server found on this machine: run `strata-peer build`.');
    if (mode === 'direct' && !this.o.directHost) {
      throw new Error(
        'This agent does not allow direct mode: restart it with --allow-direct --direct-host <LAN address> (read the risk in docs/cluster.md first), or use the tunnel.',
      );
    }
    if (this.starting) await this.starting.catch(() => undefined);
    const c = this.cur;
    if (c && !c.child.hasExited() && c.mode === mode) return this.state();
    if (c && !c.child.hasExited()) {
      if (this.tunnels > 0) throw new Error(`rpc-server is in use in ${c.mode} mode; it switches to ${mode} mode once that client is done.`);
      await this.stop('mode change');
    }
    this.starting = this.start(mode);
    try {
      await this.starting;
    } finally {
      this.starting = undefined;
    }
    return this.state();
  }

  /** Endpoint for a tunnel: rpc-server in tunnel mode. Counts as a use until release(). */
  async acquireTunnel(): Promise<{ host: string; port: number; release: () => void }> {
    await this.ensure('tunnel');
    const c = this.cur!;
    this.tunnels += 1;
    this.lastUse = Date.now();
    let released = false;
    return {
      host: c.host,
      port: c.port,
      release: () => {
        if (released) return;
        released = true;
        this.tunnels -= 1;
        this.lastUse = Date.now();
      },
    };
  }

  /** A control connection that started rpc-server keeps it up while it lives. */
  lease(): () => void {
    this.leases += 1;
    this.lastUse = Date.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.leases -= 1;
      this.lastUse = Date.now();
    };
  }

  /** Fresh device memory when nobody uses rpc-server (starting it in tunnel mode if needed), else the last figures. */
  async refresh(): Promise<PeerDevice[]> {
    if (this.tunnels > 0) return this.deviceList();
    if (!this.cur || this.cur.child.hasExited()) await this.ensure('tunnel');
    await this.probe();
    return this.deviceList();
  }

  async stop(reason: string): Promise<void> {
    const c = this.cur;
    this.cur = undefined;
    if (c && !c.child.hasExited()) {
      this.o.log(`stopping rpc-server pid ${c.child.pid} (${reason})`);
      await stopTied(c.child, 3000);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.idleTimer);
    await this.stop('agent exits');
  }

  private async start(mode: TransportMode): Promise<Running> {
    const host = mode === 'tunnel' ? '127.0.0.1' : this.o.directHost!;
    const port = mode === 'tunnel' ? await freeLoopbackPort() : this.o.directPort;
    const args = ['-H', host, '-p', String(port)];
    if (this.o.threads) args.push('-t', String(this.o.threads));
    if (this.o.devices?.length) args.push('-d', this.o.devices.join(','));
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.o.env };
    if (this.o.cacheDir) {
      args.push('-c');
      env.LLAMA_CACHE = this.o.cacheDir;
    }
    this.o.log(`starting rpc-server (${mode} mode) on ${host}:${port}: ${this.o.binary} ${args.join(' ')}`);
    const child = startTied(this.o.binary!, args, { env, logFile: path.join(this.o.logDir, 'rpc-server.log'), log: this.o.log });
    const run: Running = { child, mode, host, port };
    this.cur = run;
    void child.exited.then((r) => {
      if (this.cur === run) {
        this.cur = undefined;
        this.lastError = `rpc-server exited (${r.signal ?? `code ${r.code}`}): ${child.tail().filter(Boolean).slice(-3).join(' | ')}`;
        this.o.log(this.lastError);
      }
    });
    // Ready when it answers a hello; the probe also gives the first memory figures.
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.hasExited()) {
        this.lastError = `rpc-server could not start: ${child.tail().filter(Boolean).slice(-5).join(' | ') || 'it printed nothing'}`;
        throw new Error(this.lastError);
      }
      try {
        await this.probe(run);
        break;
      } catch (e) {
        if (Date.now() > deadline) {
          await stopTied(child, 1000);
          this.lastError = `rpc-server did not answer within 60 s: ${(e as Error).message}`;
          throw new Error(this.lastError);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.lastError = undefined;
    this.lastUse = Date.now();
    this.o.log(
      `rpc-server pid ${child.pid} ready (${mode} mode, protocol ${run.version ? formatVersion(run.version) : '?'}): ${this.devices.map((d) => `${d.name} ${mib(d.freeBytes)}/${mib(d.totalBytes)} MiB free`).join(', ')}`,
    );
    return run;
  }

  private async probe(run: Running | undefined = this.cur): Promise<void> {
    if (!run) return;
    const host = run.host === '0.0.0.0' ? '127.0.0.1' : run.host;
    // Our own rpc-server: its version is whatever it says; the sidecar judges compatibility.
    const r = await probeRpcServer({ host, port: run.port, timeoutMs: 2000, expect: null });
    run.version = r.version;
    this.names = parseDeviceLines(run.child.output());
    this.devices = r.devices.map((d: RpcDeviceMemory) => ({
      index: d.index,
      name: this.names[d.index]?.name ?? `RPC device ${d.index}`,
      description: this.names[d.index]?.description ?? '',
      freeBytes: d.freeBytes,
      totalBytes: d.totalBytes,
    }));
    this.probedAt = Date.now();
  }

  private async checkIdle(): Promise<void> {
    const c = this.cur;
    if (!c || c.child.hasExited() || this.tunnels > 0 || this.leases > 0 || this.starting) return;
    if (Date.now() - this.lastUse >= this.o.idleStopMs) await this.stop(`idle for ${Math.round(this.o.idleStopMs / 1000)} s`);
  }
}

/** "Devices:" block of rpc-server's start-up output: "  CUDA0: NVIDIA H200 (143771 MiB, 143050 MiB free)". */
export function parseDeviceLines(text: string): Array<{ name: string; description: string }> {
  const out: Array<{ name: string; description: string }> = [];
  const start = text.lastIndexOf('Devices:');
  if (start < 0) return out;
  for (const line of text.slice(start).split('\n').slice(1)) {
    const m = /^\s{2}([^:\s]+): (.*) \(\d+ MiB, \d+ MiB free\)\s*$/.exec(line);
    if (!m) break;
    out.push({ name: m[1], description: m[2] });
  }
  return out;
}

function mib(b: number): number {
  return Math.round(b / 1048576);
}

/** A free port on this machine's loopback (rpc-server and placed servers listen there only). */
export const freeLoopbackPort = (): Promise<number> => pickFreePort('127.0.0.1');
