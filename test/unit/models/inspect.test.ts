import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GgmlType } from '../../../src/core/models/gguf/ggmlTypes';
import { GgufFormatError } from '../../../src/core/models/gguf/reader';
import { GgufMetadataValue, gv } from '../../../src/core/models/gguf/values';
import { writeGguf } from '../../../src/core/models/gguf/writer';
import { bytesReadPerToken, inspectModel, quantMixLine, SplitModelError } from '../../../src/core/models/inspect/modelInfo';
import { parseLoadLog, sumBuffers } from '../../../src/core/models/planner/loadLog';

// Small hand-made GGUFs (sparse, no real weights): what inspection reads, and the one-sentence
// errors for broken and incomplete files.

const E = 256;
function spec(extra: Array<[string, ReturnType<typeof gv.u32>]> = [], split?: { no: number; count: number }) {
  const md: Array<[string, GgufMetadataValue]> = [
    ['general.architecture', gv.str('qwen2')],
    ['general.name', gv.str('Tiny')],
    ['general.file_type', gv.u32(15)],
    ['qwen2.block_count', gv.u32(2)],
    ['qwen2.context_length', gv.u32(32768)],
    ['qwen2.embedding_length', gv.u32(E)],
    ['qwen2.feed_forward_length', gv.u32(512)],
    ['qwen2.attention.head_count', gv.u32(4)],
    ['qwen2.attention.head_count_kv', gv.u32(2)],
    ['tokenizer.ggml.fim_pre_token_id', gv.u32(1)],
    ['tokenizer.ggml.fim_suf_token_id', gv.u32(2)],
    ['tokenizer.ggml.fim_mid_token_id', gv.u32(3)],
    ['tokenizer.chat_template', gv.str('{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}')],
    ...extra,
  ];
  if (split) md.push(['split.no', gv.u16(split.no)], ['split.count', gv.u16(split.count)]);
  return md;
}
const tensors = (first: boolean) => [
  ...(first
    ? [
        { name: 'token_embd.weight', shape: [E, 1000], type: GgmlType.Q4_K },
        { name: 'output.weight', shape: [E, 1000], type: GgmlType.Q6_K },
        { name: 'output_norm.weight', shape: [E], type: GgmlType.F32 },
      ]
    : []),
  ...[0, 1].flatMap((i) =>
    (first ? i === 0 : i === 1)
      ? [
          { name: `blk.${i}.attn_q.weight`, shape: [E, E], type: GgmlType.Q4_K },
          { name: `blk.${i}.attn_q.bias`, shape: [E], type: GgmlType.F32 },
          { name: `blk.${i}.ffn_up.weight`, shape: [E, 512], type: GgmlType.Q4_K },
          { name: `blk.${i}.ffn_down.weight`, shape: [512, E], type: GgmlType.Q6_K },
        ]
      : [],
  ),
];

describe('GGUF inspection', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-inspect-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads shape, quant mix, bytes per layer, FIM tokens and chat template', async () => {
    const f = path.join(dir, 'one.gguf');
    await writeGguf(f, { metadata: spec(), tensors: [...tensors(true), ...tensors(false)] });
    const i = await inspectModel(f);
    assert.deepStrictEqual(
      [i.architecture, i.layers, i.embd, i.heads, i.kvHeads, i.headDimK, i.vocab, i.contextLength, i.quantLabel],
      ['qwen2', 2, 256, 4, 2, 64, 1000, 32768, 'Q4_K_M'],
    );
    assert.strictEqual(i.hasFim, true);
    assert.strictEqual(i.hasChatTemplate, true);
    assert.strictEqual(i.chatTemplateHint, 'ChatML');
    assert.strictEqual(i.qkvBias, true);
    assert.strictEqual(i.tiedOutput, false);
    assert.strictEqual(i.layerBytes.length, 2);
    assert.strictEqual(i.layerBytes[0], i.layerBytes[1]);
    assert.match(quantMixLine(i), /^Q6_K \d+%, Q4_K \d+%$/);
    assert.strictEqual(bytesReadPerToken(i), i.tensorBytes - i.tokenEmbdBytes);
  });

  it('describes a split model from any part, as one model', async () => {
    await writeGguf(path.join(dir, 'S-00001-of-00002.gguf'), { metadata: spec([], { no: 0, count: 2 }), tensors: tensors(true) });
    await writeGguf(path.join(dir, 'S-00002-of-00002.gguf'), {
      metadata: [
        ['general.architecture', gv.str('qwen2')],
        ['split.no', gv.u16(1)],
        ['split.count', gv.u16(2)],
      ],
      tensors: tensors(false),
    });
    const i = await inspectModel(path.join(dir, 'S-00002-of-00002.gguf'));
    assert.strictEqual(i.path, path.join(dir, 'S-00001-of-00002.gguf'));
    assert.strictEqual(i.parts.length, 2);
    assert.ok(i.layerBytes[0] > 0 && i.layerBytes[1] > 0, 'layer 1 lives in part 2');
  });

  it('names the missing part of an incomplete split model', async () => {
    await writeGguf(path.join(dir, 'M-00001-of-00003.gguf'), { metadata: spec([], { no: 0, count: 3 }), tensors: tensors(true) });
    await assert.rejects(
      inspectModel(path.join(dir, 'M-00001-of-00003.gguf')),
      (e: SplitModelError) => e instanceof SplitModelError && /M-00002-of-00003\.gguf is missing: 2 of 3 parts/.test(e.message),
    );
  });

  it('gives one clear error naming a truncated or foreign file', async () => {
    const good = path.join(dir, 'one.gguf');
    const cut = path.join(dir, 'cut.gguf');
    fs.writeFileSync(cut, fs.readFileSync(good).subarray(0, 300));
    await assert.rejects(inspectModel(cut), (e: GgufFormatError) => e instanceof GgufFormatError && /^cut\.gguf is truncated/.test(e.message));
    const txt = path.join(dir, 'notes.gguf');
    fs.writeFileSync(txt, 'hello, not a model');
    await assert.rejects(inspectModel(txt), /^GgufFormatError: notes\.gguf is not a GGUF file|notes\.gguf is not a GGUF file/);
  });
});

describe('llama.cpp load log', () => {
  it('reads the buffer lines and the breakdown table', () => {
    const log = parseLoadLog(
      [
        '0.05.753.453 I load_tensors:   CPU_Mapped model buffer size =   417.66 MiB',
        '0.05.753.455 I load_tensors:        CUDA0 model buffer size = 18508.35 MiB',
        '0.08.264.019 I llama_kv_cache:      CUDA0 KV buffer size =  8192.00 MiB',
        '0.08.306.232 I sched_reserve:      CUDA0 compute buffer size =   224.01 MiB',
        '0.08.306.242 I sched_reserve:  CUDA_Host compute buffer size =    52.01 MiB',
        '0.00.609.413 I common_memory_breakdown_print: | memory breakdown [MiB]     | total    free     self   model   context   compute    unaccounted |',
        '0.00.609.427 I common_memory_breakdown_print: |   - CUDA0 (H100 80GB HBM3) | 81079 = 80552 + (26924 = 18508 +    8192 +     224) +      -26397 |',
        '0.00.609.428 I common_memory_breakdown_print: |   - Host                   |                    469 =   417 +       0 +      52                |',
      ].join('\n'),
    );
    assert.strictEqual(sumBuffers(log, 'model', /^CUDA0$/), Math.round(18508.35 * 1048576));
    assert.strictEqual(sumBuffers(log, 'compute', /^CUDA/), Math.round(224.01 * 1048576) + Math.round(52.01 * 1048576));
    assert.deepStrictEqual(
      log.breakdown.map((r) => [r.name, r.model / 1048576, r.context / 1048576, r.compute / 1048576]),
      [
        ['CUDA0 (H100 80GB HBM3)', 18508, 8192, 224],
        ['Host', 417, 0, 52],
      ],
    );
  });
});
