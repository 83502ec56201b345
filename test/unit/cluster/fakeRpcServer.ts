// FAKE rpc-server, for fault injection only: it answers the RPC hello with a protocol version the
// real rpc-server of our llama.cpp cannot be made to report (another release), or hangs up / stays
// silent the way a server of another protocol generation or a busy one does.
import * as net from 'net';

export type FakeBehaviour =
  | { kind: 'version'; major: number; minor: number; patch: number }
  /** Reads the hello and hangs up (a server of another generation rejecting the size). */
  | { kind: 'hangup' }
  /** Accepts and never answers (a real rpc-server busy with another client). */
  | { kind: 'silent' };

export async function startFakeRpcServer(b: FakeBehaviour): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => undefined);
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < 9 + 24) return;
      if (b.kind === 'hangup') s.destroy();
      else if (b.kind === 'version') {
        const rsp = Buffer.alloc(8 + 28);
        rsp.writeBigUInt64LE(28n, 0);
        rsp[8] = b.major;
        rsp[9] = b.minor;
        rsp[10] = b.patch;
        s.write(rsp);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  };
}
