import * as net from 'net';

// Loopback ports for llama-server. The OS picks a free one; between our probe and llama-server's
// bind another program can take it, which the supervisor detects from the log and retries.

export function pickFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true when something already listens on host:port (or we may not bind it). */
export function isPortTaken(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(true));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(false)));
  });
}
