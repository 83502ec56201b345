import * as assert from 'assert';
import * as net from 'net';
import { collectClusterReport, formatClusterReport, parseHostPort } from '../../../src/cluster/report';
import { stripFlags } from '../../../src/cluster/coordinator/serverArgs';
import { checkPlacementArgs } from '../../../src/cluster/agent/placement';
import { parseDeviceLines } from '../../../src/cluster/agent/rpcServer';
import { zeroRange } from '../../../src/cluster/net/splice';
import { encodeHello } from '../../../src/cluster/rpc/protocol';

describe('cluster report and small parsers', () => {
  it('parses peer addresses', () => {
    assert.deepStrictEqual(parseHostPort('192.168.1.42'), { host: '192.168.1.42', port: 7399 });
    assert.deepStrictEqual(parseHostPort(' box2.local:7400 '), { host: 'box2.local', port: 7400 });
    assert.deepStrictEqual(parseHostPort('[fe80::1]:7401'), { host: 'fe80::1', port: 7401 });
    assert.strictEqual(parseHostPort('fe80::1'), undefined);
    assert.strictEqual(parseHostPort('box:99999'), undefined);
    assert.strictEqual(parseHostPort('a b'), undefined);
  });

  it('reports unreachable and token-less peers in one sentence each', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const r = await collectClusterReport([
      { name: 'gone', host: '127.0.0.1', port, transport: 'tunnel', token: 'sp1_xxxxxxxxxxxxxxxxxxxx' },
      { name: 'new', host: '127.0.0.1', port, transport: 'tunnel' },
    ]);
    assert.deepStrictEqual(formatClusterReport(r), [
      `✗ gone (127.0.0.1:${port}, tunnel): Nothing listens on peer "gone" (127.0.0.1:${port}): start the agent there (\`strata-peer\`) or check the port.`,
      `✗ new (127.0.0.1:${port}, tunnel): No token stored for new: run "Strata: Add Peer" again for it.`,
      'No model is set ("strata.model.path"), so there is no split to show.',
    ]);
  });

  it('replaces split flags in a plan and keeps the rest', () => {
    assert.deepStrictEqual(stripFlags(['-c', '8192', '-ngl', '99', '--tensor-split=1,1', '-fa', 'on', '--rpc', 'a:1'], ['--rpc', '-ngl', '--tensor-split']), [
      '-c',
      '8192',
      '-fa',
      'on',
    ]);
  });

  it('accepts only model-shaping llama-server flags in placement mode', () => {
    const resolve = (n: string) => `/models/${n}`;
    assert.deepStrictEqual(checkPlacementArgs(['-c', '4096', '--jinja', '-md', 'draft.gguf'], resolve), ['-c', '4096', '--jinja', '-md', '/models/draft.gguf']);
    assert.throws(() => checkPlacementArgs(['--host', '0.0.0.0'], resolve), /flag "--host" is not allowed/);
    assert.throws(() => checkPlacementArgs(['--api-key', 'x'], resolve), /not allowed/);
  });

  it("reads device names from rpc-server's start-up output", () => {
    const out =
      'Starting RPC server v7.0.0\n  endpoint       : 127.0.0.1:5\n  local cache    : n/a\nDevices:\n  CUDA0: NVIDIA H200 (143771 MiB, 143050 MiB free)\n  CUDA1: NVIDIA H200 (143771 MiB, 143050 MiB free)\n  transport      : TCP\n';
    assert.deepStrictEqual(parseDeviceLines(out), [
      { name: 'CUDA0', description: 'NVIDIA H200' },
      { name: 'CUDA1', description: 'NVIDIA H200' },
    ]);
  });

  it("zeroes the RPC hello's transport caps as they pass, across chunk boundaries", () => {
    const hello = encodeHello(Buffer.alloc(24, 0xab));
    const z = zeroRange(9, 33);
    const out = Buffer.concat([z(hello.subarray(0, 5)), z(hello.subarray(5, 20)), z(Buffer.concat([hello.subarray(20), Buffer.from([1, 2, 3])]))]);
    assert.deepStrictEqual(out, Buffer.concat([hello.subarray(0, 9), Buffer.alloc(24), Buffer.from([1, 2, 3])]));
    const later = Buffer.alloc(10, 7);
    assert.strictEqual(z(later), later, 'after the hello, chunks pass untouched');
  });
});
