import * as assert from 'assert';
import { gpuFacts, summarizeMachine } from '../../../src/core/models/machineSummary';
import { machineFromProbe } from '../../../src/core/models/planner/devices';
import { probeAccelerators } from '../../../src/core/native';
import type { AcceleratorDevice, AcceleratorProbe } from '../../../src/core/native/types';

// "Your machine" of the walkthrough: what the probe found, what that means in model sizes, and
// the exact fix where memory is held back. Probes as the addon reports them on the machines the
// project targets (Strix Halo with the default GTT window or a big BIOS carve-out, a 4090, a
// machine with no GPU), then this machine's own probe.

const GiB = 1024 ** 3;

function probeOf(devices: AcceleratorDevice[], ramGiB: number, availGiB: number): AcceleratorProbe {
  return { schema: 1, via: 'native', backends: [], system: { totalBytes: ramGiB * GiB, availableBytes: availGiB * GiB, source: 'test' }, devices };
}

function strixHalo(gttGiB: number, vramGiB: number, ramGiB = 124.5): AcceleratorProbe {
  const gtt = { totalBytes: gttGiB * GiB, usedBytes: 0.3 * GiB };
  const vram = { totalBytes: vramGiB * GiB, usedBytes: 0.2 * GiB };
  const pci = '0000:c5:00.0';
  return probeOf(
    [
      {
        backend: 'hip',
        index: 0,
        name: 'AMD Radeon 8060S',
        architecture: 'gfx1151',
        integrated: true,
        totalBytes: vram.totalBytes,
        freeBytes: vram.totalBytes - vram.usedBytes,
        budgetBytes: vram.totalBytes - vram.usedBytes,
        memorySource: 'hipMemGetInfo',
        pciBusId: pci,
      },
      {
        backend: 'amdgpu',
        index: 0,
        name: 'AMD Radeon Graphics',
        architecture: 'gfx1151',
        integrated: true,
        totalBytes: null,
        freeBytes: null,
        budgetBytes: vram.totalBytes - vram.usedBytes + gtt.totalBytes - gtt.usedBytes,
        memorySource: 'amdgpu-sysfs',
        pciBusId: pci,
        vram,
        gtt,
      },
    ],
    ramGiB,
    ramGiB - 6,
  );
}

function summary(probe: AcceleratorProbe) {
  return summarizeMachine({ probe, machine: machineFromProbe(probe), disk: { dir: '/models', freeBytes: 500e9 } });
}

describe('machine summary (walkthrough "Your machine")', function () {
  // Each case plans every catalog preset (≈1–2 s of CPU alone); on a loaded 2-core CI machine that
  // took over 10 s (two timeouts in a fresh-clone run at load 18), so the budget is CPU-load proof.
  this.timeout(60_000);
  it('Strix Halo 128 GB with the default GTT window: one GPU, the kernel parameters to copy, and what they unlock', () => {
    const s = summary(strixHalo(62, 0.5));
    assert.strictEqual(s.gpus.length, 1, 'hip and amdgpu views of one GPU are one GPU');
    assert.strictEqual(s.gpus[0].name, 'AMD Radeon 8060S');
    assert.strictEqual(s.gpus[0].gttBytes, 62 * GiB);
    assert.strictEqual(s.noGpu, false);
    const gtt = s.heldBack.find((h) => h.kind === 'kernel-gtt');
    assert.ok(gtt, JSON.stringify(s.heldBack));
    assert.strictEqual(gtt.copy, 'amdgpu.gttsize=126976 ttm.pages_limit=32505856');
    assert.match(gtt.text, /only 63 GiB of your 128 GB/);
    assert.match(s.capacity.headline, /^up to a 70B Q4 model with a 32k context$/);
    assert.ok(s.capacityAfterFix, 'raising the GTT window lets a larger model fit');
    assert.match(s.capacityAfterFix.headline, /^up to a 70B Q8 model with a 32k context$/);
    assert.ok(!s.heldBack.some((h) => h.kind === 'bios-vram'), 'a 512 MB carve-out is the minimum already');
  });

  it('a 64 GiB BIOS carve-out is named as held back from the CPU', () => {
    const s = summary(strixHalo(30, 64));
    const bios = s.heldBack.find((h) => h.kind === 'bios-vram');
    assert.ok(bios);
    assert.match(bios.text, /reserves 64 GiB as VRAM .* set it to its minimum/);
  });

  it('raised GTT already: nothing held back, 70B at a long context', () => {
    const s = summary(strixHalo(124, 0.5));
    assert.deepStrictEqual(s.heldBack, []);
    assert.strictEqual(s.capacityAfterFix, undefined);
    assert.match(s.capacity.headline, /^up to a 70B Q8 model with a 32k context$/);
  });

  it('an RTX 4090 (24 GB): a 32B Q4 fits, nothing to fix', () => {
    const p = probeOf(
      [
        {
          backend: 'cuda',
          index: 0,
          name: 'NVIDIA GeForce RTX 4090',
          architecture: 'sm_89',
          integrated: false,
          totalBytes: 24 * GiB,
          freeBytes: 23.4 * GiB,
          budgetBytes: 23.4 * GiB,
          memorySource: 'nvml',
          pciBusId: '0000:01:00.0',
        },
      ],
      64,
      50,
    );
    const s = summary(p);
    assert.strictEqual(s.gpus.length, 1);
    assert.deepStrictEqual(s.heldBack, []);
    assert.match(s.capacity.headline, /^up to a 32B Q4 model with a \d+k context$/);
    assert.match(s.capacity.example ?? '', /tok\/s \(estimate\)/);
    assert.match(s.capacity.beyond ?? '', /^a 70B Q\d model also loads with \d+ of 80 layers on the GPU and the rest on the CPU/);
  });

  it('no GPU: says so, counts a software Vulkan device as no GPU, and sizes models for the CPU', () => {
    const p = probeOf(
      [
        {
          backend: 'vulkan',
          index: 0,
          name: 'llvmpipe (LLVM 15.0.6, 256 bits)',
          architecture: null,
          integrated: true,
          totalBytes: 16 * GiB,
          freeBytes: 16 * GiB,
          budgetBytes: 16 * GiB,
          memorySource: 'VK_EXT_memory_budget',
          pciBusId: null,
        },
        {
          backend: 'cpu',
          index: 0,
          name: 'AMD EPYC',
          architecture: 'x86_64',
          integrated: true,
          totalBytes: 16 * GiB,
          freeBytes: 12 * GiB,
          budgetBytes: 12 * GiB,
          memorySource: '/proc/meminfo',
          pciBusId: null,
        },
      ],
      16,
      12,
    );
    assert.deepStrictEqual(gpuFacts(p), []);
    const s = summarizeMachine({ probe: p, machine: machineFromProbe(p, { listed: [] }) });
    assert.strictEqual(s.noGpu, true);
    assert.match(s.capacity.headline, /^up to a [\d.]+B Q[48] model with a \d+k context, on the CPU$/);
    assert.match(
      s.forCompletions ?? '',
      /^Qwen2\.5 Coder 1\.5B Instruct Q8_0, [\d.]+–[\d.]+ tok\/s \(estimate\)$/,
      'a small model keeps up with typing on the CPU',
    );
  });

  it('this machine: the real probe gives a summary with RAM and a capacity sentence', async () => {
    const p = await probeAccelerators({ timeoutMs: 15_000 });
    const s = summarizeMachine({ probe: p, machine: machineFromProbe(p) });
    assert.ok(s.ram.totalBytes > 0 && s.ram.availableBytes > 0);
    assert.match(s.capacity.headline, /^(up to a [\d.]+B Q[48] model|no preset coder model fits)/);
  });
});
