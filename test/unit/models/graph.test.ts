import * as assert from 'assert';
import { computeBufferBytes } from '../../../src/core/models/planner/computeBuffers';
import { buildTransformerGraph, TransformerShape } from '../../../src/core/models/planner/graph/transformer';

// Figures llama.cpp itself printed at the pinned commit (CPU build here, CUDA on an H100): the
// simulation of its graph and allocator must give them to the byte (MiB with 2 decimals).

const MiB = 1024 * 1024;
const tiny: TransformerShape = {
  layers: 4,
  embd: 64,
  heads: 4,
  kvHeads: 2,
  headDimK: 16,
  headDimV: 16,
  ffn: 192,
  vocab: 151936,
  expertCount: 0,
  expertUsed: 0,
  expertFfn: 0,
  qkvBias: true,
  qkNorm: false,
};
const q32: TransformerShape = {
  layers: 64,
  embd: 5120,
  heads: 40,
  kvHeads: 8,
  headDimK: 128,
  headDimV: 128,
  ffn: 27648,
  vocab: 152064,
  expertCount: 0,
  expertUsed: 0,
  expertFfn: 0,
  qkvBias: true,
  qkNorm: false,
};
const cpu = { alignments: [32], layerDevice: () => 0, outputDevice: 0 };
const cuda = { alignments: [128, 32], layerDevice: () => 0, outputDevice: 0 };
const mib = (b: number) => Math.round((b / MiB) * 100) / 100;
const base = { slots: 1, unified: true, typeK: 'f16' as const, typeV: 'f16' as const, nBatch: 2048, nUbatch: 512 };

describe('compute buffers (ggml graph + allocator simulation)', () => {
  it('builds the same graph as llama.cpp (142 nodes for the tiny model)', () => {
    const g = buildTransformerGraph(tiny, { nTokens: 512, nSeqs: 4, nOutputs: 4, nKv: 2048, nStream: 1, flashAttn: true });
    assert.strictEqual(g.graph.nodes.length, 142);
  });
  it('matches llama-server on the CPU: tiny model', () => {
    assert.strictEqual(mib(computeBufferBytes(tiny, { ...base, nCtx: 2048, slots: 4, flashAttn: true }, cpu)[0]), 3.64);
    assert.strictEqual(mib(computeBufferBytes(tiny, { ...base, nCtx: 4096, flashAttn: false }, cpu)[0]), 40.76);
  });
  it('matches llama.cpp for Qwen2.5-Coder-32B on the CPU (--fit dry run) and on CUDA (H100 load log)', () => {
    assert.strictEqual(Math.floor(mib(computeBufferBytes(q32, { ...base, nCtx: 8192, slots: 4, flashAttn: true }, cpu)[0])), 210);
    assert.strictEqual(Math.floor(mib(computeBufferBytes(q32, { ...base, nCtx: 8192, slots: 4, flashAttn: false }, cpu)[0])), 710);
    const [dev, host] = computeBufferBytes(q32, { ...base, nCtx: 32768, flashAttn: true }, cuda);
    assert.deepStrictEqual([mib(dev), mib(host)], [224.01, 52.01]);
  });
  it("matches llama.cpp's Vulkan backend (H200 load logs): its graph reordering frees one [n_embd, n_ubatch] activation CUDA keeps", () => {
    const l70: TransformerShape = { ...q32, layers: 80, embd: 8192, heads: 64, ffn: 28672, vocab: 128256, qkvBias: false };
    const vulkan = { alignments: [32, 32], vulkanOrder: [true], layerDevice: () => 0, outputDevice: 0 };
    const both = (m: TransformerShape, cfg: Parameters<typeof computeBufferBytes>[1]) =>
      [cuda, vulkan].map((place) => computeBufferBytes(m, cfg, place).map(mib));
    // CUDA0 (H100) 224.01 / Vulkan0 (H200) 214.01: 10 MiB = 5120 x 512 x f32; the host buffer is the same.
    assert.deepStrictEqual(both(q32, { ...base, nCtx: 32768, flashAttn: true }), [
      [224.01, 52.01],
      [214.01, 52.01],
    ]);
    assert.deepStrictEqual(both(q32, { ...base, nCtx: 8192, flashAttn: false }), [
      [700.01, 40.01],
      [680.01, 40.01],
    ]);
    assert.deepStrictEqual(both(l70, { ...base, nCtx: 4096, slots: 4, flashAttn: false }), [
      [588.01, 44.01],
      [556.01, 44.01],
    ]);
  });
  it('runs the ops of weights left on the host there: Llama 3.3 70B on lavapipe (--fit dry run, 216 MiB device, 88 MiB host)', () => {
    // llama.cpp keeps the 40 Q6_K ffn_down tensors (184 MiB, above lavapipe's 128 MiB maxStorageBufferRange)
    // and the output weight on the CPU; those matmuls, their input copies and the head run in the host buffer.
    const l70: TransformerShape = { ...q32, layers: 80, embd: 8192, heads: 64, ffn: 28672, vocab: 128256, qkvBias: false };
    const q6kLayers = Array.from({ length: 80 }, (_, i) => i).filter((i) => i < 10 || i >= 70 || (i - 10) % 3 === 2);
    const lavapipe = {
      alignments: [32, 32],
      vulkanOrder: [true],
      layerDevice: () => 0,
      outputDevice: 1,
      hostWeights: q6kLayers.map((i) => `blk.${i}.ffn_down.weight`),
    };
    const [dev, host] = computeBufferBytes(l70, { ...base, nCtx: 16384, flashAttn: true }, lavapipe);
    assert.deepStrictEqual([Math.floor(mib(dev)), Math.floor(mib(host))], [216, 88]);
  });
  it('grows with the batch and, without flash attention, with the context', () => {
    const at = (nCtx: number, fa: boolean, nUbatch = 512) => computeBufferBytes(q32, { ...base, nCtx, flashAttn: fa, nUbatch, nOutputs: 2048 }, cpu)[0];
    assert.strictEqual(Math.floor(at(4096, true) / MiB), Math.floor(at(32768, true) / MiB));
    assert.ok(at(32768, false) > 3 * at(8192, false));
    assert.strictEqual(Math.floor(at(32768, false, 2048) / MiB), 10712);
  });
});
