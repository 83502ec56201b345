import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { probeAccelerators, type AcceleratorProbe } from '../../src/core/native';
import { _resetNativeForTests, loadNative } from '../../src/core/native/loader';
import { cliPath, memTotalFromProc, tmpDir, useAddon } from './helpers';
import { skipBecause } from '../harness/skips';

// The probe on this machine (CPU only, no GPU runtime installed) through the real addon, the
// real CLI, and a real sysfs-shaped tree for the amdgpu reader.

function byBackend(p: AcceleratorProbe, b: string) {
  return p.devices.filter((d) => d.backend === b);
}

describe('native probe (this machine)', function () {
  this.timeout(120000);
  before(function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: the probe reads /proc and sysfs');
    useAddon();
  });
  after(() => _resetNativeForTests());

  it('reports one cpu device whose RAM matches /proc/meminfo, and no GPU backend', async () => {
    const p = await probeAccelerators();
    assert.strictEqual(p.via, 'native', JSON.stringify(p));
    assert.strictEqual(p.isolated, true, 'by default in a strata_probe process, which is built next to the addon');
    assert.strictEqual(p.schema, 1);
    const cpu = byBackend(p, 'cpu');
    assert.strictEqual(cpu.length, 1);
    const total = memTotalFromProc();
    assert.ok(Math.abs(cpu[0].totalBytes! - total) / total < 0.01, `${cpu[0].totalBytes} vs ${total}`);
    assert.strictEqual(p.system.totalBytes, cpu[0].totalBytes);
    assert.ok(p.system.availableBytes > 0 && p.system.availableBytes <= p.system.totalBytes);
    assert.strictEqual(cpu[0].integrated, true);
    assert.ok(cpu[0].architecture && cpu[0].name);
    for (const b of ['cuda', 'hip', 'vulkan', 'amdgpu'] as const) {
      assert.strictEqual(byBackend(p, b).length, 0, b);
      const st = p.backends.find((s) => s.backend === b)!;
      // Vulkan may be 'ok' with its software device skipped where Mesa's lavapipe is installed.
      const expected = b === 'vulkan' && /software/.test(st.detail ?? '') ? 'ok' : 'absent';
      assert.strictEqual(st.status, expected, `${b}: ${JSON.stringify(st)}`);
      assert.ok(st.detail, `${b} says why`);
    }
    assert.strictEqual(p.backends.find((s) => s.backend === 'dxgi')!.status, 'unsupported');
    assert.strictEqual(p.backends.find((s) => s.backend === 'metal')!.status, 'unsupported');
  });

  it('treats libraries that are not there as absent backends, not errors', async () => {
    const p = await probeAccelerators({
      cudaLib: '/nonexistent/libcuda.so.1',
      hipLib: '/nonexistent/libamdhip64.so',
      vulkanLib: '/nonexistent/libvulkan.so.1',
    });
    for (const b of ['cuda', 'hip', 'vulkan']) {
      const st = p.backends.find((s) => s.backend === b)!;
      assert.strictEqual(st.status, 'absent');
      assert.match(st.detail!, /nonexistent/);
    }
  });

  it('runs only the backends asked for', async () => {
    const p = await probeAccelerators({ backends: ['cpu'] });
    assert.deepStrictEqual(
      p.backends.map((b) => b.backend),
      ['cpu'],
    );
  });

  it('the CLI prints the same devices as the addon', async () => {
    const p = await probeAccelerators({ isolate: false });
    assert.strictEqual(p.isolated, false);
    const out = JSON.parse(execFileSync(cliPath(), { encoding: 'utf8' })) as AcceleratorProbe;
    const strip = (x: AcceleratorProbe) => x.devices.map((d) => ({ ...d, freeBytes: 0, budgetBytes: 0 }));
    assert.deepStrictEqual(strip(out), strip(p));
    assert.deepStrictEqual(
      out.backends.map((b) => [b.backend, b.status]),
      p.backends.map((b) => [b.backend, b.status]),
    );
    const tsv = execFileSync(cliPath(), ['--tsv', '--backends', 'cpu'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .trim()
      .split('\n');
    assert.strictEqual(tsv.length, 2);
    assert.match(tsv[1], /^cpu\t0\t-\t\d+\t\d+\t\d+\t/);
  });
});

/** A sysfs tree shaped like a Strix Halo box with a discrete Radeon and an NVIDIA card added. */
function fakeSysfs(): string {
  const root = tmpDir('sysfs');
  const w = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text + '\n');
  };
  const card = (name: string, pci: string, files: Record<string, string>) => {
    const dev = `devices/pci0000:00/${pci}`;
    for (const [k, v] of Object.entries(files)) w(`${dev}/${k}`, v);
    fs.mkdirSync(path.join(root, 'class/drm', name), { recursive: true });
    fs.symlinkSync(path.join(root, dev), path.join(root, 'class/drm', name, 'device'));
  };
  const GiB = 1024 ** 3;
  card('card1', '0000:c5:00.0', {
    vendor: '0x1002',
    device: '0x1586',
    mem_info_vram_total: String(512 * 1024 ** 2),
    mem_info_vram_used: String(100 * 1024 ** 2),
    mem_info_gtt_total: String(110 * GiB),
    mem_info_gtt_used: String(2 * GiB),
  });
  card('card2', '0000:03:00.0', {
    vendor: '0x1002',
    device: '0x744c',
    product_name: 'AMD Radeon RX 7900 XTX',
    mem_info_vram_total: String(24 * GiB),
    mem_info_vram_used: String(1 * GiB),
    mem_info_gtt_total: String(62 * GiB),
    mem_info_gtt_used: '0',
  });
  card('card0', '0000:01:00.0', { vendor: '0x10de', device: '0x2684' });
  fs.mkdirSync(path.join(root, 'class/drm/card1-DP-1')); // a connector, not a card
  fs.mkdirSync(path.join(root, 'class/drm/renderD128'));
  w('class/kfd/kfd/topology/nodes/0/properties', 'cpu_cores_count 32\nsimd_count 0\ngfx_target_version 0\nlocation_id 0\ndomain 0');
  w('class/kfd/kfd/topology/nodes/1/properties', `cpu_cores_count 0\nsimd_count 80\ngfx_target_version 110501\nlocation_id ${0xc5 << 8}\ndomain 0`);
  w('class/kfd/kfd/topology/nodes/2/properties', `cpu_cores_count 0\nsimd_count 192\ngfx_target_version 110000\nlocation_id ${0x03 << 8}\ndomain 0`);
  return root;
}

describe('amdgpu sysfs probe (fake tree)', function () {
  this.timeout(120000);
  let root: string;
  before(function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: a fake sysfs tree');
    useAddon();
    root = fakeSysfs();
  });
  after(() => {
    _resetNativeForTests();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('counts VRAM + GTT for the APU and VRAM alone for the discrete GPU; addon and fallback agree', async () => {
    const native = await probeAccelerators({ sysfsRoot: root, backends: ['amdgpu'], isolate: false });
    assert.strictEqual(native.via, 'native');
    const isolated = await probeAccelerators({ sysfsRoot: root, backends: ['amdgpu'] });
    assert.strictEqual(isolated.isolated, true);
    _resetNativeForTests();
    loadNative('/nonexistent', { STRATA_NATIVE: 'off' });
    const ts = await probeAccelerators({ sysfsRoot: root, backends: ['amdgpu'] });
    assert.strictEqual(ts.via, 'fallback');
    useAddon();

    for (const p of [native, isolated, ts]) {
      const gpus = p.devices;
      assert.strictEqual(gpus.length, 2, JSON.stringify(p));
      const [apu, dgpu] = gpus;
      const MiB = 1024 ** 2;
      const GiB = 1024 ** 3;
      assert.strictEqual(apu.pciBusId, '0000:c5:00.0');
      assert.strictEqual(apu.architecture, 'gfx1151');
      assert.strictEqual(apu.integrated, true);
      assert.strictEqual(apu.name, 'AMD GPU 0x1586');
      assert.strictEqual(apu.totalBytes, 512 * MiB + 110 * GiB);
      assert.strictEqual(apu.freeBytes, 412 * MiB + 108 * GiB);
      assert.strictEqual(apu.budgetBytes, 412 * MiB + Math.min(108 * GiB, p.system.availableBytes));
      assert.deepStrictEqual(apu.gtt, { totalBytes: 110 * GiB, usedBytes: 2 * GiB });
      assert.strictEqual(dgpu.name, 'AMD Radeon RX 7900 XTX');
      assert.strictEqual(dgpu.architecture, 'gfx1100');
      assert.strictEqual(dgpu.integrated, null); // no ioctl on a fake tree, and not an APU-only ISA
      assert.strictEqual(dgpu.totalBytes, 24 * GiB);
      assert.strictEqual(dgpu.budgetBytes, 23 * GiB);
      assert.strictEqual(p.backends[0].status, 'ok');
    }
    const strip = (p: AcceleratorProbe) => p.devices.map((d) => ({ ...d, budgetBytes: 0 }));
    assert.deepStrictEqual(strip(native), strip(ts));
    assert.deepStrictEqual(strip(isolated), strip(ts));
  });
});

/**
 * Mesa's lavapipe: a real Vulkan loader and driver that needs no GPU. Used when installed
 * (apt-get install libvulkan1 mesa-vulkan-drivers) or when STRATA_TEST_LAVAPIPE names a folder
 * the two packages (and libllvm15) were unpacked into with dpkg -x.
 */
function lavapipe(): { env: NodeJS.ProcessEnv } | undefined {
  const root = process.env.STRATA_TEST_LAVAPIPE || '';
  const libDir = path.join(root || '/', 'usr/lib/x86_64-linux-gnu');
  const icd = path.join(root || '/', 'usr/share/vulkan/icd.d/lvp_icd.x86_64.json');
  const loader = path.join(libDir, 'libvulkan.so.1');
  if (!fs.existsSync(icd) || !fs.existsSync(loader)) return undefined;
  let icdFile = icd;
  if (root) {
    // The packaged manifest names /usr/lib/...; point it into the unpacked tree.
    icdFile = path.join(tmpDir('lvp'), 'lvp.json');
    fs.writeFileSync(icdFile, fs.readFileSync(icd, 'utf8').replace(/"\/usr\/lib/g, `"${root}/usr/lib`));
  }
  return {
    env: {
      ...process.env,
      STRATA_VULKAN_LIB: loader,
      VK_ICD_FILENAMES: icdFile,
      VK_DRIVER_FILES: icdFile,
      LD_LIBRARY_PATH: root ? libDir : process.env.LD_LIBRARY_PATH,
    },
  };
}

describe('Vulkan probe through Mesa lavapipe (real loader and driver, no GPU)', function () {
  this.timeout(60000);
  const lvp = process.platform === 'linux' ? lavapipe() : undefined;
  before(function () {
    if (!lvp) skipBecause(this, 'Mesa lavapipe is not installed (apt-get install mesa-vulkan-drivers libvulkan1; see lavapipe())');
  });

  it('skips the software device by default, as llama.cpp does', () => {
    const p = JSON.parse(execFileSync(cliPath(), ['--backends', 'vulkan'], { encoding: 'utf8', env: lvp!.env })) as AcceleratorProbe;
    assert.strictEqual(p.backends[0].status, 'ok', JSON.stringify(p.backends));
    assert.strictEqual(p.devices.length, 0);
    assert.match(p.backends[0].detail!, /1 CPU \(software\) device\(s\) skipped/);
  });

  it('reads name, type and device-local heaps when asked to list it', () => {
    const env = { ...lvp!.env, STRATA_VULKAN_CPU: '1' };
    const p = JSON.parse(execFileSync(cliPath(), ['--backends', 'vulkan'], { encoding: 'utf8', env })) as AcceleratorProbe;
    assert.strictEqual(p.devices.length, 1, JSON.stringify(p));
    const d = p.devices[0];
    assert.match(d.name, /llvmpipe/);
    assert.strictEqual(d.integrated, true);
    assert.ok(d.totalBytes! > 0);
    assert.ok(['VK_EXT_memory_budget', 'vulkan-heaps'].includes(d.memorySource!));
  });
});
