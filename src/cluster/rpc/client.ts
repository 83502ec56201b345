import * as net from 'net';
import { Duplex } from 'stream';
import { SocketReader } from '../net/byteQueue';
import {
  decodeHelloResponse,
  encodeHello,
  encodeRequest,
  formatVersion,
  HELLO_RSP_SIZE,
  isCompatible,
  PINNED_RPC_VERSION,
  RpcCmd,
  RpcVersion,
} from './protocol';

// A small client for llama.cpp's rpc-server: hello + version check, device count, free/total
// memory per device. It never allocates or computes anything on the peer.
//
// Mind the server's one-client-at-a-time loop: while llama-server is connected to an
// rpc-server, a probe waits in its accept queue and times out. Callers (the peer agent) probe
// only when they know the server is idle and otherwise report what they saw last.

export interface RpcDeviceMemory {
  /** Device index on that server (RPC<n>[host:port] in llama-server's log, n counting from 0 per server). */
  index: number;
  freeBytes: number;
  totalBytes: number;
}

export interface RpcProbeResult {
  endpoint: string;
  version: RpcVersion;
  devices: RpcDeviceMemory[];
  /** Connect + hello round trip, ms. */
  helloMs: number;
}

export type RpcErrorCode = 'refused' | 'unreachable' | 'timeout' | 'closed' | 'protocol' | 'version-mismatch';

/** Every failure with one sentence a user can act on. */
export class RpcProbeError extends Error {
  override readonly name = 'RpcProbeError';
  constructor(
    readonly code: RpcErrorCode,
    message: string,
    readonly server?: RpcVersion,
    readonly client?: RpcVersion,
  ) {
    super(message);
  }
}

export interface RpcConnectOptions {
  host: string;
  port: number;
  /** Per step (connect, each answer). Default 5000 ms. */
  timeoutMs?: number;
  /** Version of the llama-server that will use this peer. Default: the pinned llama.cpp's. null: accept any (the agent probing its own server). */
  expect?: RpcVersion | null;
  /** How to name the peer in messages; default host:port. */
  label?: string;
  /** An already connected stream to use instead of dialing host:port (e.g. a tunnel). */
  stream?: Duplex;
}

export class RpcConnection {
  private constructor(
    private readonly sock: Duplex,
    private readonly reader: SocketReader,
    private readonly timeoutMs: number,
    readonly label: string,
    readonly version: RpcVersion,
  ) {}

  /** Connects and says hello; rejects with RpcProbeError('version-mismatch') on an incompatible peer. */
  static async open(opts: RpcConnectOptions): Promise<RpcConnection> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const label = opts.label ?? `${opts.host}:${opts.port}`;
    const expect = opts.expect === undefined ? PINNED_RPC_VERSION : opts.expect;
    const ours = expect ? formatVersion(expect) : 'this llama.cpp';
    const sock = opts.stream ?? (await dial(opts.host, opts.port, timeoutMs, label));
    const reader = new SocketReader(sock, () => `rpc-server ${label}`);
    try {
      sock.write(encodeHello());
      let size: bigint;
      try {
        size = (await reader.read(8, timeoutMs)).readBigUInt64LE(0);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
          throw new RpcProbeError(
            'timeout',
            `rpc-server ${label} accepted the connection but did not answer within ${timeoutMs} ms: it is probably serving another llama-server (it takes one client at a time); stop that one or wait.`,
          );
        }
        // The server checks the HELLO size before anything else and hangs up on a mismatch:
        // that is what a server of another protocol generation does.
        throw new RpcProbeError(
          'version-mismatch',
          `rpc-server ${label} hung up on the RPC hello: it speaks another RPC protocol than ${ours}; install the same llama.cpp release on both machines.`,
          undefined,
          expect ?? undefined,
        );
      }
      if (size !== BigInt(HELLO_RSP_SIZE)) {
        throw new RpcProbeError(
          'version-mismatch',
          `rpc-server ${label} answered the hello with ${size} bytes instead of ${HELLO_RSP_SIZE}: it speaks another RPC protocol than ${ours}; install the same llama.cpp release on both machines.`,
          undefined,
          expect ?? undefined,
        );
      }
      const { version } = decodeHelloResponse(await reader.read(HELLO_RSP_SIZE, timeoutMs));
      if (expect && !isCompatible(expect, version)) {
        throw new RpcProbeError('version-mismatch', versionMismatchMessage(label, version, expect), version, expect);
      }
      return new RpcConnection(sock, reader, timeoutMs, label, version);
    } catch (e) {
      sock.destroy();
      if (e instanceof RpcProbeError) throw e;
      throw new RpcProbeError('closed', `rpc-server ${label} failed during the hello: ${(e as Error).message}.`);
    }
  }

  async deviceCount(): Promise<number> {
    const rsp = await this.call(RpcCmd.DEVICE_COUNT, Buffer.alloc(0), 4);
    return rsp.readUInt32LE(0);
  }

  async deviceMemory(device: number): Promise<RpcDeviceMemory> {
    const req = Buffer.alloc(4);
    req.writeUInt32LE(device, 0);
    const rsp = await this.call(RpcCmd.GET_DEVICE_MEMORY, req, 16);
    return { index: device, freeBytes: Number(rsp.readBigUInt64LE(0)), totalBytes: Number(rsp.readBigUInt64LE(8)) };
  }

  async devices(): Promise<RpcDeviceMemory[]> {
    const n = await this.deviceCount();
    const out: RpcDeviceMemory[] = [];
    for (let i = 0; i < n; i++) out.push(await this.deviceMemory(i));
    return out;
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }

  private async call(cmd: number, payload: Buffer, expectBytes: number): Promise<Buffer> {
    this.sock.write(encodeRequest(cmd, payload));
    try {
      const size = (await this.reader.read(8, this.timeoutMs)).readBigUInt64LE(0);
      if (size !== BigInt(expectBytes))
        throw new RpcProbeError('protocol', `rpc-server ${this.label} answered command ${cmd} with ${size} bytes instead of ${expectBytes}.`);
      return await this.reader.read(expectBytes, this.timeoutMs);
    } catch (e) {
      if (e instanceof RpcProbeError) throw e;
      // The server closes the connection on a request it rejects (e.g. a device index it lacks).
      throw new RpcProbeError((e as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? 'timeout' : 'closed', `rpc-server ${this.label}: ${(e as Error).message}.`);
    }
  }
}

/** hello + every device's memory, then disconnect. */
export async function probeRpcServer(opts: RpcConnectOptions): Promise<RpcProbeResult> {
  const t0 = performance.now();
  const conn = await RpcConnection.open(opts);
  const helloMs = performance.now() - t0;
  try {
    return { endpoint: `${opts.host}:${opts.port}`, version: conn.version, devices: await conn.devices(), helloMs };
  } finally {
    conn.close();
  }
}

export function versionMismatchMessage(label: string, server: RpcVersion, client: RpcVersion): string {
  const newer = server.major > client.major || (server.major === client.major && server.minor > client.minor);
  return (
    `rpc-server ${label} speaks RPC protocol ${formatVersion(server)} but this llama-server speaks ${formatVersion(client)}: ` +
    `${newer ? 'update llama.cpp on this machine' : 'update llama.cpp on the peer'} so that both run the same release.`
  );
}

function dial(host: string, port: number, timeoutMs: number, label: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new RpcProbeError(
          'timeout',
          `rpc-server ${label} did not accept a connection within ${timeoutMs} ms: check that the machine is on and the port is open.`,
        ),
      );
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const refused = e.code === 'ECONNREFUSED';
      reject(
        new RpcProbeError(
          refused ? 'refused' : 'unreachable',
          refused
            ? `Nothing listens on ${label}: start rpc-server (or strata-peer) there.`
            : `${label} cannot be reached (${e.code ?? e.message}): check the address and the network.`,
        ),
      );
    });
  });
}
