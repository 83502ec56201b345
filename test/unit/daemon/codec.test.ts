import * as assert from 'assert';
import {
  decodeClientFrame,
  decodeDaemonFrame,
  encodeFrame,
  isKnownMethod,
  PROTOCOL_VERSION,
  ProtocolError,
  samePlan,
  ServerPlan,
  validateClusterConfig,
  validatePlan,
} from '../../../src/core/protocol';

describe('sidecar protocol codec', () => {
  it('round-trips a hello and a request', () => {
    const hello = decodeClientFrame(encodeFrame({ type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 't', client: { name: 'w', pid: 5 } }));
    assert.deepStrictEqual(hello, { type: 'hello', protocolVersion: PROTOCOL_VERSION, token: 't', client: { name: 'w', pid: 5 } });
    const req = decodeClientFrame(encodeFrame({ type: 'req', id: 7, method: 'status', params: {} }));
    assert.deepStrictEqual(req, { type: 'req', id: 7, method: 'status', params: {} });
  });

  it('drops unknown hello fields and keeps retire', () => {
    const h = decodeClientFrame(JSON.stringify({ type: 'hello', protocolVersion: 9, retire: 'now', extra: 1, client: { name: 3 } }));
    assert.deepStrictEqual(h, { type: 'hello', protocolVersion: 9, retire: 'now', client: {} });
  });

  it('refuses frames that do not fit', () => {
    const bad = [
      'not json',
      '[1,2]',
      '"str"',
      'null',
      '{}',
      '{"type":"nope"}',
      '{"type":"hello"}',
      '{"type":"hello","protocolVersion":1,"token":5}',
      '{"type":"hello","protocolVersion":1,"retire":"later"}',
      '{"type":"req","method":"status"}',
      '{"type":"req","id":-1,"method":"status"}',
      '{"type":"req","id":1.5,"method":"status"}',
      '{"type":"req","id":1}',
      '{"type":"req","id":1,"method":"status","params":[1]}',
    ];
    for (const b of bad) assert.throws(() => decodeClientFrame(b), ProtocolError, b);
  });

  it('lets an unknown method through so the daemon can answer its id', () => {
    const f = decodeClientFrame('{"type":"req","id":3,"method":"fly"}');
    assert.strictEqual(f.type, 'req');
    assert.strictEqual(isKnownMethod((f as { method: string }).method), false);
    assert.strictEqual(isKnownMethod('load'), true);
  });

  it('checks daemon frames', () => {
    assert.deepStrictEqual(decodeDaemonFrame('{"type":"res","id":1,"ok":true,"result":{}}'), { type: 'res', id: 1, ok: true, result: {} });
    assert.throws(() => decodeDaemonFrame('{"type":"res","id":1,"ok":false}'), ProtocolError);
    assert.throws(() => decodeDaemonFrame('{"type":"event","event":"teleport","data":{}}'), ProtocolError);
    assert.throws(() => decodeDaemonFrame('{"type":"welcome","protocolVersion":1}'), ProtocolError);
    assert.strictEqual(decodeDaemonFrame('{"type":"event","event":"progress","data":{"kind":"load"}}').type, 'event');
  });

  describe('validatePlan', () => {
    const ok: ServerPlan = { binaryPath: '/bin/llama-server', modelPath: '/m.gguf', args: ['-c', '4096'] };
    it('accepts a plan and keeps only known fields', () => {
      const p = validatePlan({ ...ok, port: 8080, label: 'x', idleUnloadMs: 5, env: { A: 'b' }, junk: true });
      assert.deepStrictEqual(p, { ...ok, port: 8080, label: 'x', idleUnloadMs: 5, env: { A: 'b' } });
    });
    it('refuses flags the supervisor owns, with the flag named', () => {
      for (const f of ['--port', '--host', '--api-key', '-m', '--model', '--metrics']) {
        assert.throws(
          () => validatePlan({ ...ok, args: [f, '1'] }),
          (e: Error) => e.message.includes(f),
        );
      }
      assert.throws(() => validatePlan({ ...ok, args: ['--port=1'] }), /--port/);
    });
    it('refuses wrong types', () => {
      for (const p of [
        null,
        {},
        { ...ok, binaryPath: '' },
        { ...ok, args: 'x' },
        { ...ok, args: [1] },
        { ...ok, port: 0 },
        { ...ok, port: 70000 },
        { ...ok, env: { A: 1 } },
        { ...ok, idleUnloadMs: -1 },
        { ...ok, readyTimeoutMs: 'x' },
      ]) {
        assert.throws(() => validatePlan(p), ProtocolError, JSON.stringify(p));
      }
    });
    it('samePlan ignores label and timers, not flags or env order', () => {
      assert.ok(samePlan(ok, { ...ok, label: 'other', idleUnloadMs: 9, readyTimeoutMs: 1 }));
      assert.ok(!samePlan(ok, { ...ok, args: ['-c', '8192'] }));
      assert.ok(samePlan({ ...ok, env: { A: '1', B: '2' } }, { ...ok, env: { B: '2', A: '1' } }));
      assert.ok(!samePlan(ok, { ...ok, port: 1 }));
    });
  });

  describe('cluster.configure params', () => {
    const peer = { name: 'box2', host: '192.168.1.42', port: 7399, token: 'sp1_0123456789abcdef', transport: 'tunnel' };
    const bad = (v: unknown, re: RegExp) =>
      assert.throws(
        () => validateClusterConfig(v),
        (e: Error) => e instanceof ProtocolError && re.test(e.message),
      );

    it('keeps only known fields of a good config', () => {
      const cfg = validateClusterConfig({
        peers: [
          { ...peer, extra: 'dropped' },
          { ...peer, name: 'box3', transport: 'direct', enabled: false },
        ],
        mode: 'split',
        localDevices: [{ id: 'ROCm0', label: 'Radeon 8060S', freeBytes: 96e9, x: 1 }],
        hostFreeBytes: 8e9,
        placements: [{ role: 'fim', peer: 'box3', model: 'coder-7b.gguf', args: ['-c', '8192'] }],
      });
      assert.deepStrictEqual(cfg, {
        peers: [
          { name: 'box2', host: '192.168.1.42', port: 7399, token: 'sp1_0123456789abcdef', transport: 'tunnel' },
          { name: 'box3', host: '192.168.1.42', port: 7399, token: 'sp1_0123456789abcdef', transport: 'direct', enabled: false },
        ],
        mode: 'split',
        localDevices: [{ id: 'ROCm0', label: 'Radeon 8060S', freeBytes: 96e9 }],
        hostFreeBytes: 8e9,
        placements: [{ role: 'fim', peer: 'box3', model: 'coder-7b.gguf', args: ['-c', '8192'] }],
      });
      assert.deepStrictEqual(validateClusterConfig({ peers: [] }), { peers: [] });
    });

    it('refuses what the daemon cannot use, naming the field', () => {
      bad({}, /cluster\.peers must be an array/);
      bad({ peers: [{ ...peer, name: 'has space' }] }, /peers\[0\]\.name/);
      bad({ peers: [peer, peer] }, /two peers are named box2/);
      bad({ peers: [{ ...peer, port: 70000 }] }, /peer box2: port must be 1\.\.65535/);
      bad({ peers: [{ ...peer, token: 'short' }] }, /peer box2: token missing or too short/);
      bad({ peers: [{ ...peer, transport: 'udp' }] }, /transport must be "tunnel" or "direct"/);
      bad({ peers: [peer], mode: 'always' }, /cluster\.mode/);
      bad({ peers: [peer], localDevices: [{ id: 'x' }] }, /localDevices\[0\] needs id, label and freeBytes/);
      bad({ peers: [peer], placements: [{ role: 'draft', peer: 'box2', model: 'm.gguf' }] }, /role must be "fim" or "chat"/);
      bad({ peers: [peer], placements: [{ role: 'fim', peer: 'box9', model: 'm.gguf' }] }, /peer "box9" is not one of the configured peers/);
      bad(
        {
          peers: [peer],
          placements: [
            { role: 'fim', peer: 'box2', model: 'a.gguf' },
            { role: 'fim', peer: 'box2', model: 'b.gguf' },
          ],
        },
        /two placements for role fim/,
      );
      bad({ peers: [peer], placements: [{ role: 'chat', peer: 'box2', model: 'm.gguf', args: [1] }] }, /args must be an array of strings/);
    });

    it('knows the cluster methods', () => {
      for (const m of ['cluster.configure', 'cluster.status', 'cluster.useReturned']) assert.ok(isKnownMethod(m), m);
    });
  });
});
