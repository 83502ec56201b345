import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { planModelFromArch } from '../../src/core/models/catalog/presetModel';
import { presetById } from '../../src/core/models/catalog/presets';
import { machineFromProbe } from '../../src/core/models/planner/devices';
import { planModel } from '../../src/core/models/planner/plan';
import type { AcceleratorProbe } from '../../src/core/native/types';
import { skipBecause } from '../harness/skips';
import { buildFake, cliPath, tmpDir } from './helpers';

// Unified memory on AMD APUs over Vulkan, with heap reports shaped like Strix Halo's under RADV
// (a FAKE libvulkan, test/native/fakes/fake_vulkan.c: no such GPU here). The rule under test is
// llama.cpp's (ggml_backend_vk_get_device_memory, docs/vulkan-memory.md): an integrated GPU
// counts every heap, the device-local BIOS carve-out and the host-visible GTT heap alike; other
// devices count device-local heaps only. Then the planner and its fit advice on those numbers.

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('Vulkan heaps of a Strix Halo (RADV) through the probe, the planner and the fit advice', function () {
  this.timeout(60_000);
  let dir: string;
  let stock: string;
  let carveout96: string;

  before(function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: the fake Vulkan loader is a Linux shared library');
    dir = tmpDir('fake-vk');
    // 512 MiB carve-out + 110 GiB GTT (amdgpu.gttsize raised): the common owner's setup.
    stock = buildFake('fake_vulkan.c', path.join(dir, 'stock'), 'libvulkan.so.1');
    // A 96 GiB BIOS carve-out: Linux sees ~31 GiB, the default GTT is half of that.
    carveout96 = buildFake('fake_vulkan.c', path.join(dir, 'c96'), 'libvulkan.so.1', ['FAKE_CARVEOUT_MIB=98304ULL', 'FAKE_GTT_MIB=15872ULL']);
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const probe = (lib: string, extra: NodeJS.ProcessEnv = {}): AcceleratorProbe => {
    const env: NodeJS.ProcessEnv = { ...process.env, STRATA_VULKAN_LIB: lib, ...extra };
    if (!('GGML_VK_VISIBLE_DEVICES' in extra)) delete env.GGML_VK_VISIBLE_DEVICES;
    return JSON.parse(execFileSync(cliPath(), ['--backends', 'vulkan'], { encoding: 'utf8', env })) as AcceleratorProbe;
  };
  /** The probe as a Strix Halo's /proc/meminfo would go with it. */
  const onHost = (p: AcceleratorProbe, totalGiB: number, availableGiB: number): AcceleratorProbe => ({
    ...p,
    system: { totalBytes: totalGiB * GiB, availableBytes: availableGiB * GiB, source: 'synthetic' },
  });

  it('counts the carve-out and the GTT heap of the integrated GPU, and only device-local heaps elsewhere', () => {
    const p = probe(stock);
    const [apu, rtx] = p.devices;
    assert.strictEqual(p.devices.length, 2, JSON.stringify(p));
    assert.strictEqual(apu.name, 'AMD Radeon Graphics (RADV GFX1151)');
    assert.strictEqual(apu.architecture, 'gfx1151');
    assert.strictEqual(apu.integrated, true);
    assert.strictEqual(apu.totalBytes, (512 + 112640) * MiB);
    assert.deepStrictEqual(apu.vram, { totalBytes: 512 * MiB, usedBytes: 100 * MiB });
    assert.deepStrictEqual(apu.gtt, { totalBytes: 112640 * MiB, usedBytes: 1024 * MiB });
    // Free as llama.cpp computes it: budget - usage over both heaps.
    assert.strictEqual(apu.freeBytes, (512 - 100 + 112640 - 1024) * MiB);
    assert.strictEqual(apu.pciBusId, '0000:c5:00.0');
    // The discrete card's 64 GiB host heap is system RAM llama.cpp does not count.
    assert.strictEqual(rtx.integrated, false);
    assert.strictEqual(rtx.totalBytes, 24564 * MiB);
    assert.strictEqual(rtx.vram, undefined);
    assert.match(p.backends[0].detail!, /1 CPU \(software\) device\(s\) skipped/);
  });

  it('lists the devices GGML_VK_VISIBLE_DEVICES names, in its order, software ones included, and refuses a bad index', () => {
    const p = probe(stock, { GGML_VK_VISIBLE_DEVICES: '2,0' });
    assert.deepStrictEqual(
      p.devices.map((d) => [d.index, d.name]),
      [
        [0, 'llvmpipe (LLVM 15.0.6, 256 bits)'],
        [1, 'AMD Radeon Graphics (RADV GFX1151)'],
      ],
    );
    assert.strictEqual(p.devices[0].totalBytes, 2048 * MiB);
    const bad = probe(stock, { GGML_VK_VISIBLE_DEVICES: '5' });
    assert.strictEqual(bad.backends[0].status, 'error');
    assert.match(bad.backends[0].detail!, /GGML_VK_VISIBLE_DEVICES names device 5, but Vulkan has 3/);
  });

  it('plans on the GTT + carve-out budget, capped by the RAM the host has, sharing it with the host', () => {
    // The APU alone, as a Strix Halo has it (the fake also carries a discrete card).
    const apuOnly = { GGML_VK_VISIBLE_DEVICES: '0' };
    const m = machineFromProbe(onHost(probe(stock, apuOnly), 124.5, 118));
    assert.strictEqual(m.devices.length, 1);
    assert.strictEqual(m.strixHalo, true);
    const [d] = m.devices;
    assert.strictEqual(d.id, 'Vulkan0');
    assert.strictEqual(d.kind, 'integrated');
    assert.strictEqual(d.bandwidthGBps, 256);
    // Free carve-out (412 MiB) + free GTT (109 GiB), the GTT part no more than MemAvailable.
    assert.strictEqual(d.budgetBytes, 412 * MiB + 111616 * MiB);
    const tight = machineFromProbe(onHost(probe(stock, apuOnly), 124.5, 40));
    assert.strictEqual(tight.devices[0].budgetBytes, 412 * MiB + 40 * GiB);
    // Llama 3.3 70B Q8_0 fits at 32k on it, with no mapped copy in the page cache.
    const p70 = planModel({ model: planModelFromArch(presetById('llama-3.3-70b')!.arch, 'Q8_0', 74.98e9), machine: m, role: 'chat' });
    assert.strictEqual(p70.verdict, 'fits', p70.summary);
    assert.strictEqual(p70.mmap, false);
  });

  it('with a 96 GiB BIOS carve-out: counts it whole, and the advice is to lower it and raise GTT, not to add GTT on top', () => {
    const p = probe(carveout96, { GGML_VK_VISIBLE_DEVICES: '0' });
    const apu = p.devices[0];
    assert.strictEqual(apu.totalBytes, (98304 + 15872) * MiB);
    assert.strictEqual(apu.vram!.totalBytes, 96 * GiB);
    // Linux sees 128 GB - 96 GiB - firmware: ~30.9 GiB, of which 28 GiB are available.
    const m = machineFromProbe(onHost(p, 30.9, 28));
    assert.strictEqual(m.devices[0].budgetBytes, (98304 - 100 + 15872 - 1024) * MiB);
    // A model that needs more than the 110 GiB the GPU has now but less than the 124.5 GiB it
    // would have: the advice must say so, and must not promise 96 GiB + 124 GiB of GTT.
    const model = planModelFromArch(presetById('llama-3.3-70b')!.arch, 'Q8_0', 115 * GiB);
    const plan = planModel({ model, machine: m, role: 'chat' });
    assert.strictEqual(plan.verdict, 'does-not-fit', plan.summary);
    const fix = plan.fixes.find((f) => f.kind === 'kernel-gtt');
    assert.ok(fix, JSON.stringify(plan.fixes));
    assert.strictEqual(fix!.value, 'amdgpu.gttsize=126976 ttm.pages_limit=32505856');
    assert.match(
      fix!.text,
      /^set the BIOS UMA frame buffer \(now 96 GiB, which the OS never gets back\) to its minimum \(512 MB\) and add "amdgpu\.gttsize=126976 ttm\.pages_limit=32505856"/,
    );
    assert.match(plan.summary, /does not fit: .*set the BIOS UMA frame buffer/);
    // Too big even for 124.5 GiB: no such advice.
    const huge = planModel({ model: planModelFromArch(presetById('llama-3.3-70b')!.arch, 'Q8_0', 140 * GiB), machine: m, role: 'chat' });
    assert.ok(!huge.fixes.some((f) => f.kind === 'kernel-gtt'), JSON.stringify(huge.fixes));
  });
});
