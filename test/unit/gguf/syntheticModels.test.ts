import * as assert from 'assert';
import { execFile } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { GgmlType, ggmlTypeName } from '../../../src/core/models/gguf/ggmlTypes';
import { GgufHeader, metaArrayLength, metaBool, metaNumber, metaString, readGgufHeader, summarizeTensors } from '../../../src/core/models/gguf/reader';
import { GgufValueType } from '../../../src/core/models/gguf/values';
import { MODEL_SHAPES, SHAPE_NAMES, SHAPE_QUANTS, shapeSummary, shapeTensors, useMoreBits, writeShapeModel } from '../../../src/core/models/synthetic/shapes';
import { writeTinyQwen2Model } from '../../../src/core/models/synthetic/tinyQwen2';
import { QWEN_TOKENS, TokenType } from '../../../src/core/models/synthetic/tokenizers';
import { ensureShapeModel, ensureTinyModel, ensureVocabFile } from '../../fixtures/models';

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function typeCounts(types: GgmlType[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of types) out[ggmlTypeName(t)] = (out[ggmlTypeName(t)] ?? 0) + 1;
  return out;
}

describe('synthetic models', function () {
  // First run may fetch the llama.cpp source (for its vocab files) into the cache.
  this.timeout(300_000);
  let dir: string;
  let qwenVocab: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-synth-'));
    qwenVocab = await ensureVocabFile('qwen2');
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('tiny Qwen2', () => {
    let tiny: string;
    let h: GgufHeader;
    before(async () => {
      tiny = path.join(dir, 'tiny-a.gguf');
      await writeTinyQwen2Model({ path: tiny, seed: 5, vocabPath: qwenVocab });
      h = await readGgufHeader(tiny);
    });

    it('is byte-identical for the same seed and different for another', async () => {
      const again = path.join(dir, 'tiny-b.gguf');
      const other = path.join(dir, 'tiny-c.gguf');
      await writeTinyQwen2Model({ path: again, seed: 5, vocabPath: qwenVocab });
      await writeTinyQwen2Model({ path: other, seed: 6, vocabPath: qwenVocab });
      assert.strictEqual(sha256(again), sha256(tiny));
      assert.notStrictEqual(sha256(other), sha256(tiny));
      fs.rmSync(again);
      fs.rmSync(other);
    });

    it('has the qwen2 hyper-parameters and tensors llama.cpp requires, at least 4 layers', () => {
      assert.strictEqual(metaString(h, 'general.architecture'), 'qwen2');
      assert.strictEqual(metaNumber(h, 'qwen2.block_count'), 4);
      assert.strictEqual(metaNumber(h, 'qwen2.embedding_length'), 64);
      assert.strictEqual(metaNumber(h, 'qwen2.attention.head_count_kv'), 2);
      assert.strictEqual(h.tensors.length, 2 + 4 * 12);
      const byName = new Map(h.tensors.map((t) => [t.name, t]));
      assert.deepStrictEqual(byName.get('token_embd.weight')!.shape, [64, 151936]);
      assert.strictEqual(byName.get('token_embd.weight')!.type, GgmlType.F16);
      assert.deepStrictEqual(byName.get('blk.3.attn_k.weight')!.shape, [64, 32]);
      assert.strictEqual(byName.get('blk.3.attn_k.bias')!.type, GgmlType.F32);
      assert.strictEqual(byName.get('blk.0.ffn_down.weight')!.shape[0], 192);
      assert.ok(!byName.has('output.weight'), 'tied embeddings by default');
      assert.ok(h.fileSize < 40e6, `${h.fileSize} bytes`);
    });

    it('carries the Qwen2.5-Coder tokenizer with FIM tokens as CONTROL at their real ids', () => {
      const tokens = h.metadata.get('tokenizer.ggml.tokens');
      const types = h.metadata.get('tokenizer.ggml.token_type');
      assert.ok(tokens?.type === GgufValueType.ARRAY && tokens.itemType === GgufValueType.STRING);
      assert.ok(types?.type === GgufValueType.ARRAY && types.itemType === GgufValueType.INT32);
      assert.strictEqual(tokens.value.length, 151936);
      const expect: Array<[number, string]> = [
        [151643, '<|endoftext|>'],
        [151644, '<|im_start|>'],
        [151645, '<|im_end|>'],
        [151659, '<|fim_prefix|>'],
        [151660, '<|fim_middle|>'],
        [151661, '<|fim_suffix|>'],
        [151662, '<|fim_pad|>'],
        [151663, '<|repo_name|>'],
        [151664, '<|file_sep|>'],
      ];
      for (const [id, text] of expect) {
        assert.strictEqual(tokens.value[id], text);
        assert.strictEqual(types.value[id], TokenType.CONTROL, text);
      }
      assert.strictEqual(tokens.value[151657], '<tool_call>');
      assert.strictEqual(tokens.value[151665], '[PAD151665]');
      assert.strictEqual(metaNumber(h, 'tokenizer.ggml.fim_pre_token_id'), QWEN_TOKENS.fimPrefix);
      assert.strictEqual(metaNumber(h, 'tokenizer.ggml.fim_suf_token_id'), QWEN_TOKENS.fimSuffix);
      assert.strictEqual(metaNumber(h, 'tokenizer.ggml.fim_mid_token_id'), QWEN_TOKENS.fimMiddle);
      assert.strictEqual(metaNumber(h, 'tokenizer.ggml.fim_pad_token_id'), QWEN_TOKENS.fimPad);
      assert.strictEqual(metaNumber(h, 'tokenizer.ggml.fim_rep_token_id'), QWEN_TOKENS.repoName);
      assert.strictEqual(metaNumber(h, 'tokenizer.ggml.fim_sep_token_id'), QWEN_TOKENS.fileSep);
      assert.strictEqual(metaNumber(h, 'tokenizer.ggml.eos_token_id'), QWEN_TOKENS.imEnd);
      assert.strictEqual(metaBool(h, 'tokenizer.ggml.add_bos_token'), false);
      assert.strictEqual(metaArrayLength(h, 'tokenizer.ggml.merges'), 151387);
      assert.match(metaString(h, 'tokenizer.chat_template')!, /<\|im_start\|>assistant\\n/);
    });

    it('has real (non-zero) weights', () => {
      const emb = h.tensors[0];
      const fd = fs.openSync(tiny, 'r');
      const buf = Buffer.alloc(256);
      fs.readSync(fd, buf, 0, 256, emb.fileOffset + emb.byteSize - 256);
      fs.closeSync(fd);
      assert.ok(buf.some((b) => b !== 0));
    });

    it('is also read by @huggingface/gguf (150k-entry string arrays, local path)', async () => {
      const hf = await hfGguf(tiny, { allowLocalFile: true });
      assert.strictEqual((hf.metadata as unknown as Record<string, string[]>)['tokenizer.ggml.tokens'].length, 151936);
      assert.strictEqual(hf.tensorInfos.length, h.tensors.length);
    });

    it('is generated once into the cache and reused', async () => {
      const a = await ensureTinyModel();
      const ino = fs.statSync(a).ino; // a rewrite would rename a new inode into place
      const [b, c] = await Promise.all([ensureTinyModel(), ensureTinyModel({})]);
      assert.strictEqual(a, b);
      assert.strictEqual(a, c);
      assert.strictEqual(fs.statSync(a).ino, ino);
      assert.notStrictEqual(await ensureTinyModel({ seed: 99, layers: 5 }), a);
    });

    it('survives two processes generating the same model at once', async () => {
      const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-race-'));
      const script = `require('./test/fixtures/models').ensureTinyModel({ seed: 4242 }).then((p) => console.log(p))`;
      const run = () =>
        new Promise<string>((resolve, reject) => {
          execFile(
            process.execPath,
            ['--require', 'tsx/cjs', '-e', script],
            {
              cwd: path.resolve(__dirname, '../../..'),
              env: { ...process.env, STRATA_CACHE_DIR: cache, STRATA_LLAMA_SRC: path.dirname(path.dirname(qwenVocab)) },
            },
            (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim())),
          );
        });
      try {
        const [p1, p2] = await Promise.all([run(), run()]);
        assert.strictEqual(p1, p2);
        assert.deepStrictEqual(fs.readdirSync(path.dirname(p1)), [path.basename(p1)], 'no temp files left');
        const h2 = await readGgufHeader(p1);
        assert.strictEqual(h2.fileSize, fs.statSync(p1).size);
      } finally {
        fs.rmSync(cache, { recursive: true, force: true });
      }
    });
  });

  describe('shapes of big models', () => {
    it("uses llama-quantize's use_more_bits layers", () => {
      const picked = Array.from({ length: 64 }, (_, i) => i).filter((i) => useMoreBits(i, 64));
      assert.deepStrictEqual(picked, [0, 1, 2, 3, 4, 5, 6, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37, 40, 43, 46, 49, 52, 55, 56, 57, 58, 59, 60, 61, 62, 63]);
    });

    it('has the true parameter counts', () => {
      const q = shapeSummary('qwen2.5-coder-32b', 'Q4_K_M').parameters;
      const l = shapeSummary('llama-3.3-70b', 'Q4_K_M').parameters;
      assert.strictEqual(q, 32_763_876_352);
      assert.strictEqual(l, 70_553_706_560);
    });

    it('mixes Q4_K/Q5_K/Q6_K per tensor as Q4_K_M does', () => {
      const q = shapeTensors(MODEL_SHAPES['qwen2.5-coder-32b'], 'Q4_K_M');
      assert.deepStrictEqual(typeCounts(q.map((t) => t.type)), { Q6_K: 65, F32: 321, Q4_K: 385 });
      const type = (name: string) => q.find((t) => t.name === name)!.type;
      assert.strictEqual(type('output.weight'), GgmlType.Q6_K);
      assert.strictEqual(type('token_embd.weight'), GgmlType.Q4_K);
      assert.strictEqual(type('blk.0.attn_v.weight'), GgmlType.Q6_K);
      assert.strictEqual(type('blk.8.attn_v.weight'), GgmlType.Q4_K);
      assert.strictEqual(type('blk.10.ffn_down.weight'), GgmlType.Q6_K);
      assert.strictEqual(type('blk.11.ffn_down.weight'), GgmlType.Q4_K);
      const l = shapeTensors(MODEL_SHAPES['llama-3.3-70b'], 'Q4_K_M');
      // 70B: attn_v that would be Q4_K gets Q5_K (8 heads share it)
      assert.deepStrictEqual(typeCounts(l.map((t) => t.type)), { Q6_K: 81, F32: 162, Q4_K: 441, Q5_K: 40 });
      const q8 = shapeTensors(MODEL_SHAPES['llama-3.3-70b'], 'Q8_0');
      assert.deepStrictEqual(typeCounts(q8.map((t) => t.type)), { Q8_0: 562, F32: 162 });
    });

    it('comes within 0.2% of the published file sizes', () => {
      for (const s of SHAPE_NAMES) {
        for (const q of SHAPE_QUANTS) {
          const { tensorBytes } = shapeSummary(s, q);
          const published = MODEL_SHAPES[s].publishedBytes[q];
          assert.ok(Math.abs(tensorBytes / published - 1) < 0.002, `${s} ${q}: ${tensorBytes} vs ${published}`);
        }
      }
    });

    it('writes a sparse file with the real size and a readable header', async () => {
      const file = await ensureShapeModel('qwen2.5-coder-32b', 'Q4_K_M');
      const st = fs.statSync(file);
      const h = await readGgufHeader(file, { maxArrayItems: 0 });
      assert.strictEqual(st.size, h.fileSize);
      assert.ok(Math.abs(st.size - 19.85e9) < 0.02e9, `${st.size}`);
      if (process.platform !== 'win32') assert.ok(st.blocks * 512 < 32e6, `uses ${st.blocks * 512} bytes of disk`);
      assert.strictEqual(metaNumber(h, 'qwen2.block_count'), 64);
      assert.strictEqual(metaNumber(h, 'qwen2.embedding_length'), 5120);
      assert.strictEqual(metaNumber(h, 'qwen2.feed_forward_length'), 27648);
      assert.strictEqual(metaNumber(h, 'qwen2.attention.head_count'), 40);
      assert.strictEqual(metaNumber(h, 'qwen2.attention.head_count_kv'), 8);
      assert.strictEqual(metaNumber(h, 'qwen2.context_length'), 32768);
      assert.strictEqual(metaNumber(h, 'general.file_type'), 15);
      assert.strictEqual(metaArrayLength(h, 'tokenizer.ggml.tokens'), 152064);
      assert.strictEqual(summarizeTensors(h).parameters, 32_763_876_352);
    });

    it('writes Llama 3.3 with its llama3 RoPE factors', async () => {
      const file = await ensureShapeModel('llama-3.3-70b', 'Q4_K_M');
      const h = await readGgufHeader(file, { maxArrayItems: 0 });
      assert.ok(Math.abs(h.fileSize - 42.52e9) < 0.02e9, `${h.fileSize}`);
      assert.strictEqual(metaNumber(h, 'llama.block_count'), 80);
      assert.strictEqual(metaNumber(h, 'llama.context_length'), 131072);
      assert.strictEqual(metaNumber(h, 'llama.rope.freq_base'), 500000);
      assert.strictEqual(metaNumber(h, 'tokenizer.ggml.eos_token_id'), 128009);
      const rope = h.tensors.find((t) => t.name === 'rope_freqs.weight')!;
      assert.deepStrictEqual(rope.shape, [64]);
      const buf = Buffer.alloc(rope.byteSize);
      const fd = fs.openSync(file, 'r');
      fs.readSync(fd, buf, 0, buf.length, rope.fileOffset);
      fs.closeSync(fd);
      const f = new Float32Array(buf.buffer, buf.byteOffset, 64);
      assert.strictEqual(f[0], 1); // high frequencies unscaled
      assert.strictEqual(f[63], 8); // low frequencies scaled by `factor`
      assert.ok(f[31] > 1 && f[31] < 8, `smooth band (wavelengths 2048..8192), got ${f[31]}`);
    });

    it('is deterministic (header and written bytes)', async () => {
      const a = path.join(dir, 's1.gguf');
      const b = path.join(dir, 's2.gguf');
      const r1 = await writeShapeModel({ path: a, shape: 'llama-3.3-70b', quant: 'Q8_0' });
      await writeShapeModel({ path: b, shape: 'llama-3.3-70b', quant: 'Q8_0' });
      const head = (f: string) => {
        const buf = Buffer.alloc(r1.dataOffset + 4096);
        const fd = fs.openSync(f, 'r');
        fs.readSync(fd, buf, 0, buf.length, 0);
        fs.closeSync(fd);
        return buf;
      };
      assert.ok(head(a).equals(head(b)));
      assert.strictEqual(fs.statSync(a).size, fs.statSync(b).size);
    });
  });
});
