import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { planModelFromArch } from '../../../src/core/models/catalog/presetModel';
import { GgmlType } from '../../../src/core/models/gguf/ggmlTypes';
import { GgufMetadataValue, gv } from '../../../src/core/models/gguf/values';
import { writeGguf } from '../../../src/core/models/gguf/writer';
import { inspectModel } from '../../../src/core/models/inspect/modelInfo';
import { presetById } from '../../../src/core/models/catalog/presets';
import { planArgs } from '../../../src/core/models/planner/args';
import { machineFromProbe, PlannerMachine } from '../../../src/core/models/planner/devices';
import { gttAdvice } from '../../../src/core/models/planner/gtt';
import { kvCacheBytes, kvCells, maxContextFor } from '../../../src/core/models/planner/kvCache';
import { layoutLayers } from '../../../src/core/models/planner/layout';
import { estimateMemory } from '../../../src/core/models/planner/memoryEstimate';
import { planModel } from '../../../src/core/models/planner/plan';
import { CURRENT_FLAGS, parseServerHelp } from '../../../src/core/models/planner/serverFlags';
import { estimateSpeed, speedLabel } from '../../../src/core/models/planner/speed';
import type { AcceleratorProbe } from '../../../src/core/native/types';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function strixHalo(gttGiB: number, availableGiB = 118): PlannerMachine {
  const gtt = { totalBytes: gttGiB * GiB, usedBytes: 0.3 * GiB };
  const vram = { totalBytes: 0.5 * GiB, usedBytes: 0.2 * GiB };
  const probe: AcceleratorProbe = {
    schema: 1,
    via: 'fallback',
    backends: [],
    system: { totalBytes: 124.5 * GiB, availableBytes: availableGiB * GiB, source: 'test' },
    devices: [
      {
        backend: 'amdgpu',
        index: 0,
        name: 'AMD Radeon 8060S',
        architecture: 'gfx1151',
        integrated: true,
        totalBytes: null,
        freeBytes: null,
        budgetBytes: 0.3 * GiB + Math.min(gtt.totalBytes - gtt.usedBytes, availableGiB * GiB),
        memorySource: 'amdgpu-sysfs',
        pciBusId: '0000:c5:00.0',
        vram,
        gtt,
      },
    ],
  };
  return machineFromProbe(probe);
}

const preset = (id: string, quant: 'Q4_K_M' | 'Q8_0') => {
  const p = presetById(id)!;
  const f = p.files.find((x) => x.quant === quant)!;
  return planModelFromArch(p.arch, quant, f.sizeBytes);
};

describe('memory planner', () => {
  describe('KV cache', () => {
    it('pads the context to 256 cells and shares one pool when unified', () => {
      assert.deepStrictEqual(kvCells({ nCtx: 1000, slots: 4, unified: true }), { perStream: 1024, streams: 1, total: 1024 });
      assert.deepStrictEqual(kvCells({ nCtx: 8192, slots: 3, unified: false }), { perStream: 2816, streams: 3, total: 8448 });
    });
    it('sizes Qwen2.5-Coder-32B at 2 GiB per 8k tokens in f16 and 17/16 of half that in q8_0', () => {
      const shape = { layers: 64, kvHeads: 8, headDimK: 128, headDimV: 128 };
      assert.strictEqual(kvCacheBytes(shape, { nCtx: 8192, slots: 1, unified: true, typeK: 'f16', typeV: 'f16' }).total, 2 * GiB);
      assert.strictEqual(kvCacheBytes(shape, { nCtx: 8192, slots: 1, unified: true, typeK: 'q8_0', typeV: 'q8_0' }).total, 1088 * MiB);
      assert.strictEqual(maxContextFor(shape, 2 * GiB, 'f16', 'f16'), 8192);
    });
  });

  describe('layer placement (llama.cpp -ngl rules)', () => {
    it('keeps the first layers on the CPU and sends the output layer with the last GPU layer', () => {
      const all = layoutLayers(4, 99, [1]);
      assert.deepStrictEqual([all.layerDevice, all.outputDevice, all.offloaded], [[0, 0, 0, 0], 0, 4]);
      const two = layoutLayers(4, 2, [1]);
      assert.deepStrictEqual([two.layerDevice, two.outputDevice], [[-1, -1, -1, 0], 0]);
      const none = layoutLayers(4, 0, [1]);
      assert.deepStrictEqual([none.layerDevice, none.outputDevice], [[-1, -1, -1, -1], -1]);
    });
    it('splits layers over devices in proportion', () => {
      const l = layoutLayers(8, 99, [3, 1]);
      assert.deepStrictEqual(l.layerDevice, [0, 0, 0, 0, 0, 0, 0, 1]);
      assert.strictEqual(l.outputDevice, 1);
    });
  });

  describe('Strix Halo GTT parameters', () => {
    it('computes the 124 GiB values owners of 128 GB machines use', () => {
      const a = gttAdvice(124.5 * GiB, 0.5 * GiB);
      assert.strictEqual(a.kernelArgs, 'amdgpu.gttsize=126976 ttm.pages_limit=32505856');
      assert.strictEqual(a.installedGiB, 128);
    });
    it('scales with the RAM installed', () => {
      assert.strictEqual(gttAdvice(61 * GiB, 0.5 * GiB).kernelArgs, 'amdgpu.gttsize=61440 ttm.pages_limit=15728640');
      assert.strictEqual(gttAdvice(93 * GiB, 0.5 * GiB).gttGiB, 92);
      assert.strictEqual(gttAdvice(30 * GiB, 0.5 * GiB).gttGiB, 24);
    });
    it('with a 96 GiB BIOS carve-out, promises GTT plus the minimum carve-out, not GTT on top of 96 GiB', () => {
      // Linux sees ~30.9 GiB of a 128 GB machine then; GTT pages come out of that RAM.
      const a = gttAdvice(30.9 * GiB, 96 * GiB);
      assert.strictEqual(a.installedGiB, 128);
      assert.strictEqual(a.lowerCarveout, true);
      assert.strictEqual(a.gpuBytesAfter, 124 * GiB + 512 * MiB);
      assert.strictEqual(gttAdvice(124.5 * GiB, 0.5 * GiB).lowerCarveout, false);
    });
  });

  describe('verdicts', () => {
    it('fits Qwen2.5-Coder-32B Q4_K_M at 32k on a stock Strix Halo', () => {
      const p = planModel({ model: preset('qwen2.5-coder-32b', 'Q4_K_M'), machine: strixHalo(62), role: 'chat' });
      assert.strictEqual(p.verdict, 'fits');
      assert.strictEqual(p.ctx, 32768);
      assert.strictEqual(p.gpuLayers, 65);
      assert.strictEqual(p.mmap, false, 'no second copy in the page cache on an APU');
      assert.match(p.summary, /fits: \d+ GiB on AMD Radeon 8060S, 32768-token context/);
    });

    it('gives Llama 3.3 70B Q8_0 a smaller context or partial offload on the default GTT, and says how to raise it', () => {
      const p = planModel({
        model: preset('llama-3.3-70b', 'Q8_0'),
        machine: strixHalo(62),
        role: 'chat',
        alternatives: [{ label: 'Q4_K_M', model: preset('llama-3.3-70b', 'Q4_K_M') }],
      });
      assert.notStrictEqual(p.verdict, 'fits');
      const gtt = p.fixes.find((f) => f.kind === 'kernel-gtt');
      assert.ok(gtt, JSON.stringify(p.fixes));
      assert.strictEqual(gtt!.value, 'amdgpu.gttsize=126976 ttm.pages_limit=32505856');
      assert.ok(p.fixes.some((f) => f.kind === 'smaller-quant' && f.value === 'Q4_K_M'));
      const raised = planModel({ model: preset('llama-3.3-70b', 'Q8_0'), machine: strixHalo(124), role: 'chat' });
      assert.strictEqual(raised.verdict, 'fits');
    });

    it('says "does not fit" with the fixes when even the minimum context cannot fit', () => {
      const p = planModel({
        model: preset('llama-3.3-70b', 'Q8_0'),
        machine: strixHalo(30, 40),
        role: 'chat',
        alternatives: [{ label: 'Q4_K_M', model: preset('llama-3.3-70b', 'Q4_K_M') }],
      });
      assert.strictEqual(p.verdict, 'does-not-fit');
      assert.match(p.summary, /does not fit: it needs \d+(\.\d)? GiB more/);
      assert.ok(p.fixes.some((f) => f.kind === 'add-peer'));
    });

    it('shrinks the context to what fits and switches the KV cache to q8_0 first', () => {
      const m = preset('qwen2.5-coder-32b', 'Q4_K_M');
      const machine = strixHalo(23, 118);
      const p = planModel({ model: m, machine, role: 'chat', ctx: 32768 });
      assert.strictEqual(p.verdict, 'fits-smaller-context');
      assert.ok(p.ctx < 32768 && p.ctx >= 4096 && p.ctx % 256 === 0, String(p.ctx));
      assert.strictEqual(p.typeK, 'q8_0');
      // One more 256-token step would not fit.
      const d = machine.devices[0];
      const at = (ctx: number) =>
        estimateMemory(m, machine.devices, { ctx, slots: 1, unified: true, typeK: 'q8_0', typeV: 'q8_0', flashAttn: true, ngl: 65, nBatch: 2048, nUbatch: 512 })
          .devices[0].total;
      assert.ok(at(p.ctx) + GiB <= d.budgetBytes && at(p.ctx + 256) + GiB > d.budgetBytes);
    });

    it('plans on the CPU alone when there is no GPU', () => {
      const cpu = machineFromProbe({
        schema: 1,
        via: 'fallback',
        backends: [],
        devices: [],
        system: { totalBytes: 24 * GiB, availableBytes: 20 * GiB, source: 't' },
      });
      const p = planModel({ model: preset('qwen2.5-coder-7b', 'Q4_K_M'), machine: cpu, role: 'fim' });
      assert.strictEqual(p.verdict, 'fits');
      assert.strictEqual(p.gpuLayers, 0);
      assert.strictEqual(p.mmap, true);
      assert.match(p.summary, /system RAM \(CPU\)/);
    });
  });

  describe('compute buffer by backend', () => {
    it("predicts the H200's 214 MiB on Vulkan0 and 224 MiB on CUDA0 for Qwen2.5-Coder-32B, FA, 32k (llama.cpp's load logs)", () => {
      const probe: AcceleratorProbe = {
        schema: 1,
        via: 'fallback',
        backends: [],
        system: { totalBytes: 128 * GiB, availableBytes: 120 * GiB, source: 'test' },
        devices: [],
      };
      const m = preset('qwen2.5-coder-32b', 'Q4_K_M');
      const compute = (name: string, backend: string) => {
        const { devices } = machineFromProbe(probe, { listed: [{ name, backend, description: 'NVIDIA H200', totalMiB: 143771, freeMiB: 143000 }] });
        const est = estimateMemory(m, devices, {
          ctx: 32768,
          slots: 1,
          unified: true,
          typeK: 'f16',
          typeV: 'f16',
          flashAttn: true,
          ngl: 65,
          nBatch: 2048,
          nUbatch: 512,
        });
        return Math.round(est.devices[0].compute / MiB);
      };
      assert.deepStrictEqual([compute('Vulkan0', 'Vulkan'), compute('CUDA0', 'CUDA')], [214, 224]);
    });
  });

  describe("Vulkan's per-op size limit (maxStorageBufferRange)", () => {
    let dir: string;
    before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-planner-'))));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("keeps a layer weight above the device's limit on the host, as llama.cpp does on lavapipe (128 MiB)", async () => {
      // A sparse two-layer GGUF shaped like Llama 3.3 70B Q4_K_M's FFN: ffn_down is Q6_K (184 MiB) in
      // layer 0 and Q4_K (126 MiB) in layer 1; only the first is above lavapipe's 128 MiB.
      const E = 8192;
      const F = 28672;
      const file = path.join(dir, 'ffn.gguf');
      const md: Array<[string, GgufMetadataValue]> = [
        ['general.architecture', gv.str('llama')],
        ['llama.block_count', gv.u32(2)],
        ['llama.context_length', gv.u32(8192)],
        ['llama.embedding_length', gv.u32(E)],
        ['llama.feed_forward_length', gv.u32(F)],
        ['llama.attention.head_count', gv.u32(64)],
        ['llama.attention.head_count_kv', gv.u32(8)],
      ];
      const layer = (i: number, down: GgmlType) => [
        { name: `blk.${i}.attn_q.weight`, shape: [E, E], type: GgmlType.Q4_K },
        { name: `blk.${i}.ffn_down.weight`, shape: [F, E], type: down },
      ];
      await writeGguf(file, {
        metadata: md,
        tensors: [
          { name: 'token_embd.weight', shape: [E, 1000], type: GgmlType.Q4_K },
          { name: 'output.weight', shape: [E, 1000], type: GgmlType.Q6_K },
          ...layer(0, GgmlType.Q6_K),
          ...layer(1, GgmlType.Q4_K),
        ],
      });
      const m = await inspectModel(file);
      const Q6_K_DOWN = (F * E * 210) / 256;
      assert.deepStrictEqual(m.largeLayerTensors, [{ name: 'blk.0.ffn_down.weight', layer: 0, bytes: Q6_K_DOWN }]);
      const weights = (maxStorageBufferBytes?: number) => {
        const probe: AcceleratorProbe = {
          schema: 1,
          via: 'native',
          backends: [],
          system: { totalBytes: 64 * GiB, availableBytes: 60 * GiB, source: 'test' },
          devices: [
            {
              backend: 'vulkan',
              index: 0,
              name: 'llvmpipe (LLVM 15.0.6, 256 bits)',
              architecture: null,
              integrated: false,
              totalBytes: 32 * GiB,
              freeBytes: 32 * GiB,
              budgetBytes: 32 * GiB,
              memorySource: 'test',
              pciBusId: null,
              maxStorageBufferBytes,
            },
          ],
        };
        const est = estimateMemory(m, machineFromProbe(probe).devices, {
          ctx: 4096,
          slots: 1,
          unified: true,
          typeK: 'f16',
          typeV: 'f16',
          flashAttn: true,
          ngl: 3,
          nBatch: 2048,
          nUbatch: 512,
        });
        return [est.devices[0].weights, est.host.weights];
      };
      const [gpuDev, gpuHost] = weights();
      assert.deepStrictEqual(weights(128 * MiB), [gpuDev - Q6_K_DOWN, gpuHost + Q6_K_DOWN]);
      assert.deepStrictEqual(weights(256 * MiB), [gpuDev, gpuHost]);
    });
  });

  describe('speed estimate', () => {
    it('brackets the measured H100 rate for a 32B Q4_K_M model (84.4 tok/s)', () => {
      const s = estimateSpeed([{ weightBytes: 19.4e9, kvBytesPerToken: 0, layers: 64, bandwidthGBps: 3350 }], 0);
      assert.ok(s.low <= 84.4 && s.high >= 84.4, `${s.low}..${s.high}`);
      assert.match(speedLabel(s), /tok\/s \(estimate\)$/);
    });
    it('counts only the routed experts of a MoE model', () => {
      const moe = planModel({ model: preset('qwen3-coder-30b-a3b', 'Q4_K_M'), machine: strixHalo(62), role: 'chat' });
      const dense = planModel({ model: preset('qwen2.5-coder-32b', 'Q4_K_M'), machine: strixHalo(62), role: 'chat' });
      assert.ok(moe.speed.bytesPerToken < dense.speed.bytesPerToken / 5, `${moe.speed.bytesPerToken} vs ${dense.speed.bytesPerToken}`);
      assert.ok(moe.speed.high > 4 * dense.speed.high);
    });
  });

  describe('llama-server flags', () => {
    it('spells out every choice in the current dialect and turns --fit off', () => {
      const p = planModel({ model: preset('qwen2.5-coder-32b', 'Q4_K_M'), machine: strixHalo(62), role: 'both' });
      assert.deepStrictEqual(planArgs(p, CURRENT_FLAGS), [
        '-c',
        '32768',
        '-np',
        '2',
        '--kv-unified',
        '-ngl',
        '65',
        '-fa',
        'on',
        '--load-mode',
        'none',
        '--cache-ram',
        String(p.cacheRamMiB),
        '--fit',
        'off',
      ]);
    });
    it("speaks an older llama-server's dialect", () => {
      const old = parseServerHelp('-c,    --ctx-size N\n-fa,   --flash-attn   enable Flash Attention\n--no-mmap   do not memory-map model\n');
      assert.deepStrictEqual(old, {
        flashAttnValue: false,
        loadMode: false,
        noMmap: true,
        kvUnified: false,
        cacheRam: false,
        fit: false,
        noRepack: false,
        cacheReuse: false,
      });
      const p = planModel({ model: preset('qwen2.5-coder-32b', 'Q4_K_M'), machine: strixHalo(62), role: 'both' });
      assert.deepStrictEqual(planArgs(p, old), ['-c', '32768', '-np', '2', '-ngl', '65', '-fa', '--no-mmap']);
    });
  });
});
