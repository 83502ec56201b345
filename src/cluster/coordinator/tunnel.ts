import { EventEmitter } from 'events';
import * as net from 'net';
import { splice } from '../net/splice';
import { OpenRequest } from '../protocol';
import { AgentAddress, describeAgent, openAgentChannel, peerGone } from '../transport/agentClient';
import { ChannelOptions } from '../transport/secureChannel';

// The sidecar's end of a tunnel: a loopback port (what llama-server's --rpc, or a window's HTTP
// client in placement mode, connects to); each connection to it becomes one authenticated,
// encrypted connection to the peer agent, which forwards it to rpc-server (or its llama-server)
// on its own loopback.

export interface TunnelEvents {
  /** A tunnelled connection failed: the peer went away or refused. */
  broken: [Error];
  opened: [];
  closed: [];
}

export interface TunnelOptions extends ChannelOptions {
  /** Dial + handshake timeout. Default 10 s. */
  connectTimeoutMs?: number;
  log?: (m: string) => void;
}

export class TunnelEndpoint extends EventEmitter<TunnelEvents> {
  private server?: net.Server;
  private readonly conns = new Set<net.Socket>();
  private port = 0;
  readonly label: string;
  /** Bytes through the tunnel (both directions), for status. */
  bytes = 0;

  constructor(
    private readonly addr: AgentAddress,
    private readonly open: OpenRequest,
    private readonly o: TunnelOptions = {},
  ) {
    super();
    this.label = describeAgent(addr);
  }

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  get localPort(): number {
    return this.port;
  }

  get active(): number {
    return this.conns.size;
  }

  /** Listens on 127.0.0.1 (port 0: any free one). */
  listen(port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer((s) => this.onLocal(s));
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        srv.off('error', reject);
        this.server = srv;
        this.port = (srv.address() as net.AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  /** Stops listening and cuts every tunnelled connection. */
  close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private onLocal(local: net.Socket): void {
    local.pause();
    local.setNoDelay(true);
    this.conns.add(local);
    local.on('close', () => this.conns.delete(local));
    local.on('error', () => undefined);
    openAgentChannel(this.addr, this.open, { ...this.o, timeoutMs: this.o.connectTimeoutMs ?? 10_000 }).then(
      (ch) => {
        if (local.destroyed) {
          ch.destroy();
          return;
        }
        this.emit('opened');
        ch.on('data', (b: Buffer) => {
          this.bytes += b.length;
        });
        local.on('data', (b: Buffer) => {
          this.bytes += b.length;
        });
        // Only the channel's errors are the peer's: the local side failing is llama-server going away.
        let chErr: Error | undefined;
        ch.on('error', (e) => {
          chErr ??= e;
        });
        splice(local, ch, () => {
          if (chErr) {
            const e = peerGone(this.label, chErr, ch.remoteCloseReason);
            this.o.log?.(`tunnel to ${this.label} broken: ${e.message}`);
            this.emit('broken', e);
          }
          this.emit('closed');
        });
        local.resume();
      },
      (e: Error) => {
        this.o.log?.(`tunnel to ${this.label} could not open: ${e.message}`);
        local.destroy();
        this.emit('broken', e);
      },
    );
  }
}
