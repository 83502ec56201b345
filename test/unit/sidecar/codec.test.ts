import * as assert from 'assert';
import {
  decodeClientFrame, decodeDaemonFrame, encodeFrame, isKnownMethod, PROTOCOL_VERSION, ProtocolError, samePlan, ServerPlan, validatePlan,
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
      'not json', '[1,2]', '"str"', 'null', '{}', '{"type":"nope"}',
      '{"type":"hello"}', '{"type":"hello","protocolVersion":1,"token":5}', '{"type":"hello","protocolVersion":1,"retire":"later"}',
      '{"type":"req","method":"status"}', '{"type":"req","id":-1,"method":"status"}', '{"type":"req","id":1.5,"method":"status"}',
      '{"type":"req","id":1}', '{"type":"req","id":1,"method":"status","params":[1]}',
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
        assert.throws(() => validatePlan({ ...ok, args: [f, '1'] }), (e: Error) => e.message.includes(f));
      }
      assert.throws(() => validatePlan({ ...ok, args: ['--port=1'] }), /--port/);
    });
    it('refuses wrong types', () => {
      for (const p of [null, {}, { ...ok, binaryPath: '' }, { ...ok, args: 'x' }, { ...ok, args: [1] }, { ...ok, port: 0 }, { ...ok, port: 70000 },
        { ...ok, env: { A: 1 } }, { ...ok, idleUnloadMs: -1 }, { ...ok, readyTimeoutMs: 'x' }]) {
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
});
