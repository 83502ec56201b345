import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GgmlType } from '../../../src/core/models/gguf/ggmlTypes';
import { GgufFormatError, readGgufHeader } from '../../../src/core/models/gguf/reader';
import { gv } from '../../../src/core/models/gguf/values';
import { GgufTensorSpec, planGgufLayout, writeGguf } from '../../../src/core/models/gguf/writer';

// What a user meets when a download is cut short or the wrong file is picked: one sentence that
// names the file and says what is wrong.

const TENSORS: GgufTensorSpec[] = [
  { name: 'token_embd.weight', shape: [64, 100], type: GgmlType.F16 },
  { name: 'output_norm.weight', shape: [64], type: GgmlType.F32 },
];
const SPEC = {
  metadata: [
    ['general.architecture', gv.str('qwen2')] as const,
    ['tokenizer.ggml.tokens', gv.strings(Array.from({ length: 2000 }, (_, i) => `token-${i}`))] as const,
  ],
  tensors: TENSORS,
};

describe('GGUF reader on broken files', () => {
  let dir: string;
  let good: Buffer;
  let headerLen: number;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-corrupt-'));
    const file = path.join(dir, 'good.gguf');
    await writeGguf(file, { ...SPEC, tensorData: (_t, i) => [Buffer.alloc(i === 0 ? 64 * 100 * 2 : 256, 1)] });
    good = fs.readFileSync(file);
    headerLen = planGgufLayout(SPEC).header.length;
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function errorFor(name: string, bytes: Buffer): Promise<GgufFormatError> {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    try {
      await readGgufHeader(file);
    } catch (e) {
      assert.ok(e instanceof GgufFormatError, `expected GgufFormatError, got ${String(e)}`);
      assert.strictEqual(e.filePath, file);
      assert.ok(!e.message.includes('\n'), 'one line');
      return e;
    }
    assert.fail(`${name} was read without error`);
  }

  it('reads the intact file', async () => {
    const h = await readGgufHeader(path.join(dir, 'good.gguf'));
    assert.strictEqual(h.tensors.length, 2);
    assert.strictEqual(h.dataEnd, h.tensors[1].fileOffset + 256);
  });

  it('bad magic', async () => {
    const b = Buffer.from(good);
    b.write('GGML', 0, 'latin1');
    const e = await errorFor('model.gguf', b);
    assert.strictEqual(e.message, 'model.gguf is not a GGUF file (bad magic)');
    assert.strictEqual(e.kind, 'not-gguf');
  });

  it('an HTML error page saved under a .gguf name', async () => {
    const e = await errorFor('page.gguf', Buffer.from('<!DOCTYPE html><html>Not found</html>'));
    assert.strictEqual(e.message, 'page.gguf is not a GGUF file (bad magic)');
  });

  it('empty and tiny files', async () => {
    assert.strictEqual((await errorFor('empty.gguf', Buffer.alloc(0))).message, 'empty.gguf is empty (0 bytes), not a GGUF file');
    assert.strictEqual((await errorFor('two.gguf', Buffer.from('GG'))).message, 'two.gguf is not a GGUF file (bad magic)');
    const e = await errorFor('magic-only.gguf', Buffer.from('GGUF'));
    assert.strictEqual(e.kind, 'truncated');
  });

  it('unsupported version', async () => {
    const b = Buffer.from(good);
    b.writeUInt32LE(1, 4);
    const e = await errorFor('old.gguf', b);
    assert.strictEqual(e.message, 'old.gguf uses GGUF version 1; only versions 2 and 3 are supported');
    b.writeUInt32BE(3, 4);
    assert.match((await errorFor('be.gguf', b)).message, /version 50331648 \(a big-endian file\?\)/);
  });

  it('truncated header (cut in the middle of the vocab)', async () => {
    const e = await errorFor('cut-header.gguf', good.subarray(0, 9000));
    assert.strictEqual(e.message, 'cut-header.gguf is truncated: the header runs past the end of the file (9000 bytes)');
    assert.strictEqual(e.kind, 'truncated');
  });

  it('truncated header (cut inside the tensor infos)', async () => {
    const e = await errorFor('cut-infos.gguf', good.subarray(0, headerLen - 5));
    assert.strictEqual(e.message, `cut-infos.gguf is truncated: the header runs past the end of the file (${headerLen - 5} bytes)`);
  });

  it('truncated data (an interrupted download)', async () => {
    const h = await readGgufHeader(path.join(dir, 'good.gguf'));
    const cut = good.length - 1000;
    const e = await errorFor('cut-data.gguf', good.subarray(0, cut));
    assert.strictEqual(e.message, `cut-data.gguf is truncated: tensor data ends at ${h.dataEnd} bytes but the file has ${cut}`);
    assert.strictEqual(e.kind, 'truncated');
  });

  it('a string length pointing past the end of the file', async () => {
    const b = Buffer.from(good);
    b.writeBigUInt64LE(1n << 40n, 24); // length of the first key
    assert.match((await errorFor('len.gguf', b)).message, /^len\.gguf is truncated: the header runs past the end/);
  });

  it('unknown tensor type and misplaced tensor data', async () => {
    const b = Buffer.from(good);
    b.writeUInt32LE(4, headerLen - 12); // last tensor's type: 4 was Q4_2, long removed
    assert.strictEqual((await errorFor('type.gguf', b)).message, "type.gguf is corrupt: tensor 'output_norm.weight' has unknown ggml type 4");
    const c = Buffer.from(good);
    c.writeBigUInt64LE(12832n + 32n, headerLen - 8);
    assert.strictEqual(
      (await errorFor('offset.gguf', c)).message,
      "offset.gguf is corrupt: tensor 'output_norm.weight' starts at data offset 12864, expected 12800",
    );
  });

  it('unknown metadata value type', async () => {
    const b = Buffer.from(good);
    // header: magic, version, n_tensors, n_kv, then key "general.architecture" (8 + 20 bytes), then its type
    b.writeUInt32LE(77, 24 + 8 + 20);
    assert.strictEqual((await errorFor('kv.gguf', b)).message, "kv.gguf is corrupt: metadata 'general.architecture' has unknown value type 77");
  });

  it('a directory', async () => {
    await assert.rejects(
      readGgufHeader(dir),
      (e: unknown) => e instanceof GgufFormatError && e.message === `${path.basename(dir)} is a directory, not a GGUF file`,
    );
  });
});
