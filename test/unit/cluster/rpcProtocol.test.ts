import * as assert from 'assert';
import { probeRpcServer, RpcProbeError } from '../../../src/cluster/rpc/client';
import { decodeHelloResponse, encodeHello, isCompatible, PINNED_RPC_VERSION, versionFromHeader } from '../../../src/cluster/rpc/protocol';
import { startFakeRpcServer } from './fakeRpcServer';

// The real rpc-server is probed in test/integration/cluster; here: encoding, the version rule,
// and the messages for faults only a fake server can produce.

describe('cluster RPC protocol', () => {
  it('encodes HELLO as cmd 14, a u64 size of 24 and zero transport caps', () => {
    const b = encodeHello();
    assert.strictEqual(b.length, 33);
    assert.strictEqual(b[0], 14);
    assert.strictEqual(b.readBigUInt64LE(1), 24n);
    assert.ok(b.subarray(9).every((x) => x === 0));
    const rsp = Buffer.alloc(28);
    rsp.set([7, 1, 3]);
    assert.deepStrictEqual(decodeHelloResponse(rsp).version, { major: 7, minor: 1, patch: 3 });
  });

  it("follows llama.cpp's rule: same major, server minor not newer", () => {
    assert.ok(isCompatible({ major: 7, minor: 2, patch: 0 }, { major: 7, minor: 1, patch: 9 }));
    assert.ok(!isCompatible({ major: 7, minor: 0, patch: 0 }, { major: 7, minor: 1, patch: 0 }));
    assert.ok(!isCompatible({ major: 7, minor: 0, patch: 0 }, { major: 6, minor: 0, patch: 0 }));
  });

  it('reads the version from ggml-rpc.h', () => {
    const h = '#define RPC_PROTO_MAJOR_VERSION    7\n#define RPC_PROTO_MINOR_VERSION    0\n#define RPC_PROTO_PATCH_VERSION    0\n';
    assert.deepStrictEqual(versionFromHeader(h), PINNED_RPC_VERSION);
    assert.strictEqual(versionFromHeader('nothing'), undefined);
  });

  it('names both versions on a mismatch and says which side to update', async () => {
    const older = await startFakeRpcServer({ kind: 'version', major: 6, minor: 1, patch: 0 });
    const newer = await startFakeRpcServer({ kind: 'version', major: 7, minor: 3, patch: 2 });
    try {
      await assert.rejects(probeRpcServer({ host: '127.0.0.1', port: older.port, label: 'box2' }), (e: RpcProbeError) => {
        assert.strictEqual(e.code, 'version-mismatch');
        assert.strictEqual(
          e.message,
          'rpc-server box2 speaks RPC protocol 6.1.0 but this llama-server speaks 7.0.0: update llama.cpp on the peer so that both run the same release.',
        );
        return true;
      });
      await assert.rejects(
        probeRpcServer({ host: '127.0.0.1', port: newer.port, label: 'box3' }),
        /speaks RPC protocol 7\.3\.2 but this llama-server speaks 7\.0\.0: update llama.cpp on this machine/,
      );
    } finally {
      await older.close();
      await newer.close();
    }
  });

  it('explains a hang-up on hello (another protocol generation) and a silent busy server', async () => {
    const hang = await startFakeRpcServer({ kind: 'hangup' });
    const silent = await startFakeRpcServer({ kind: 'silent' });
    try {
      await assert.rejects(
        probeRpcServer({ host: '127.0.0.1', port: hang.port, label: 'old' }),
        (e: RpcProbeError) => e.code === 'version-mismatch' && /hung up on the RPC hello: it speaks another RPC protocol than 7\.0\.0/.test(e.message),
      );
      await assert.rejects(
        probeRpcServer({ host: '127.0.0.1', port: silent.port, label: 'busy', timeoutMs: 300 }),
        (e: RpcProbeError) => e.code === 'timeout' && /probably serving another llama-server/.test(e.message),
      );
    } finally {
      await hang.close();
      await silent.close();
    }
  });

  it('says nothing listens when the port is closed', async () => {
    const f = await startFakeRpcServer({ kind: 'silent' });
    const port = f.port;
    await f.close();
    await assert.rejects(
      probeRpcServer({ host: '127.0.0.1', port }),
      (e: RpcProbeError) => e.code === 'refused' && /Nothing listens on 127\.0\.0\.1:\d+/.test(e.message),
    );
  });
});
