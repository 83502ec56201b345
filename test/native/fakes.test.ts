import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { probeAccelerators, type AcceleratorProbe, type ProbeOptions } from '../../src/core/native';
import { _resetNativeForTests } from '../../src/core/native/loader';
import { buildFake, cliPath, repoRoot, tmpDir, useAddon } from './helpers';
import { skipBecause } from '../harness/skips';

// The CUDA and HIP parsers against FAKE runtimes (test/native/fakes/*.c, compiled here): this
// machine has no GPU, so the fakes inject the answers real drivers give, including the awkward
// ones (NVML not supporting a device, exclusive compute mode, ROCm's two property layouts).

const GB10_CTX_FREE = 100000000000;
const H100_TOTAL = 85520809984;
const H100_NVML_FREE = H100_TOTAL - 524288000;
const H100_CTX_FREE = 84200000000;

describe('CUDA and HIP probes against fake runtimes', function () {
  this.timeout(120000);
  let dir: string;
  const lib: Record<string, string> = {};

  before(function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: the fake CUDA/HIP runtimes are Linux shared libraries');
    useAddon();
    dir = tmpDir('fakes');
    lib.cuda = buildFake('fake_cuda.c', path.join(dir, 'cuda'), 'libcuda.so.1');
    lib.cudaExclusive = buildFake('fake_cuda.c', path.join(dir, 'cuda-excl'), 'libcuda.so.1', ['FAKE_MODE0=3']);
    lib.cudaNoDevice = buildFake('fake_cuda.c', path.join(dir, 'cuda-nodev'), 'libcuda.so.1', ['FAKE_INIT_RESULT=100']);
    lib.cudaBroken = buildFake('fake_cuda.c', path.join(dir, 'cuda-broken'), 'libcuda.so.1', ['FAKE_INIT_RESULT=999']);
    lib.cudaHang = buildFake('fake_cuda.c', path.join(dir, 'cuda-hang'), 'libcuda.so.1', ['FAKE_INIT_SLEEP_MS=1500']);
    lib.nvml = buildFake('fake_nvml.c', path.join(dir, 'nvml'), 'libnvidia-ml.so.1');
    lib.hip6 = buildFake('fake_hip.c', path.join(dir, 'hip6'), 'libamdhip64.so');
    lib.hip5 = buildFake('fake_hip.c', path.join(dir, 'hip5'), 'libamdhip64.so', ['FAKE_ROCM5']);
    lib.hipNoDevice = buildFake('fake_hip.c', path.join(dir, 'hip-nodev'), 'libamdhip64.so', ['FAKE_INIT_RESULT=100']);
  });
  after(() => {
    _resetNativeForTests();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const cuda = (p: AcceleratorProbe) => p.devices.filter((d) => d.backend === 'cuda');
  const status = (p: AcceleratorProbe, b: string) => p.backends.find((s) => s.backend === b)!;

  for (const isolate of [false, true]) {
    describe(isolate ? 'isolated: through a strata_probe process' : 'in-process: through the addon', () => {
      const probe = (o: ProbeOptions) => probeAccelerators({ ...o, isolate });
      it('ran the way it was asked to', async () => {
        const p = await probe({ backends: ['cpu'] });
        assert.strictEqual(p.via, 'native');
        assert.strictEqual(p.isolated, isolate);
      });

      it('CUDA: names, sm_XY, integrated flag, PCI id, totals; free from NVML, else from a primary context', async () => {
        const p = await probe({ cudaLib: lib.cuda, nvmlLib: lib.nvml, backends: ['cuda'] });
        assert.strictEqual(status(p, 'cuda').status, 'ok', JSON.stringify(p.backends));
        assert.strictEqual(status(p, 'cuda').version, '12.8');
        assert.strictEqual(status(p, 'cuda').library, lib.cuda);
        const [h100, gb10] = cuda(p);
        assert.deepStrictEqual(
          { ...h100 },
          {
            backend: 'cuda',
            index: 0,
            name: 'NVIDIA H100 80GB HBM3',
            architecture: 'sm_90',
            integrated: false,
            totalBytes: H100_TOTAL,
            freeBytes: H100_NVML_FREE,
            budgetBytes: H100_NVML_FREE,
            memorySource: 'nvml',
            pciBusId: '0000:65:00.0',
            vendorId: '0x10de',
            driverVersion: '12.8',
          },
        );
        assert.strictEqual(gb10.architecture, 'sm_121');
        assert.strictEqual(gb10.integrated, true);
        assert.strictEqual(gb10.pciBusId, '000f:01:00.0');
        assert.strictEqual(gb10.freeBytes, GB10_CTX_FREE);
        assert.strictEqual(gb10.memorySource, 'cuda-context');
      });

      it('CUDA without NVML: every device through its primary context, pushed and popped in balance', async () => {
        const p = await probe({ cudaLib: lib.cuda, nvmlLib: path.join(dir, 'none', 'libnvidia-ml.so.1'), backends: ['cuda'] });
        const [h100, gb10] = cuda(p);
        assert.strictEqual(h100.freeBytes, H100_CTX_FREE);
        assert.strictEqual(h100.memorySource, 'cuda-context');
        // The fake refuses a second push before a pop, so a leaked context would fail device 1.
        assert.strictEqual(gb10.freeBytes, GB10_CTX_FREE);
      });

      it('CUDA: no context on a device in exclusive-process mode; free stays unknown and says why', async () => {
        const p = await probe({ cudaLib: lib.cudaExclusive, nvmlLib: path.join(dir, 'none', 'x.so'), backends: ['cuda'] });
        const [h100, gb10] = cuda(p);
        assert.strictEqual(h100.freeBytes, null);
        assert.strictEqual(h100.budgetBytes, null);
        assert.strictEqual(h100.totalBytes, H100_TOTAL);
        assert.match(status(p, 'cuda').detail!, /compute mode/);
        assert.strictEqual(gb10.freeBytes, GB10_CTX_FREE);
      });

      it('CUDA: "no device" is absent, any other cuInit failure is an error', async () => {
        const a = await probe({ cudaLib: lib.cudaNoDevice, backends: ['cuda'] });
        assert.strictEqual(status(a, 'cuda').status, 'absent');
        assert.strictEqual(cuda(a).length, 0);
        const b = await probe({ cudaLib: lib.cudaBroken, backends: ['cuda'] });
        assert.strictEqual(status(b, 'cuda').status, 'error');
        assert.match(status(b, 'cuda').detail!, /cuInit: CUDA_ERROR_UNKNOWN/);
      });

      it('HIP (ROCm 6 layout): gcnArchName through hipGetDevicePropertiesR0600, integrated, PCI id, hipMemGetInfo', async () => {
        const p = await probe({ hipLib: lib.hip6, backends: ['hip'] });
        assert.strictEqual(status(p, 'hip').status, 'ok', JSON.stringify(p.backends));
        assert.strictEqual(status(p, 'hip').version, '6.4.43483');
        const [igpu, dgpu] = p.devices;
        assert.deepStrictEqual(
          { ...igpu },
          {
            backend: 'hip',
            index: 0,
            name: 'Radeon 8060S Graphics',
            architecture: 'gfx1151',
            integrated: true,
            totalBytes: 68719476736,
            freeBytes: 60000000000,
            budgetBytes: 60000000000,
            memorySource: 'hipMemGetInfo',
            pciBusId: '0000:c5:00.0',
            vendorId: '0x1002',
            driverVersion: '6.4.43483',
          },
        );
        assert.strictEqual(dgpu.architecture, 'gfx1100'); // feature suffix dropped
        assert.strictEqual(dgpu.integrated, false);
        assert.strictEqual(dgpu.freeBytes, 25000000000);
      });

      it('HIP (ROCm 5 layout): the legacy properties call, same answers', async () => {
        const p = await probe({ hipLib: lib.hip5, backends: ['hip'] });
        assert.strictEqual(status(p, 'hip').version, '5.7.31921');
        assert.deepStrictEqual(
          p.devices.map((d) => [d.architecture, d.integrated]),
          [
            ['gfx1151', true],
            ['gfx1100', false],
          ],
        );
      });

      it('HIP: hipErrorNoDevice is an absent backend', async () => {
        const p = await probe({ hipLib: lib.hipNoDevice, backends: ['hip'] });
        assert.strictEqual(status(p, 'hip').status, 'absent');
        assert.match(status(p, 'hip').detail!, /hipErrorNoDevice/);
      });
    });
  }

  it('the CLI, steered by STRATA_*_LIB, prints what the addon returns', async () => {
    const p = await probeAccelerators({ cudaLib: lib.cuda, nvmlLib: lib.nvml, hipLib: lib.hip6, backends: ['cuda', 'hip'], isolate: false });
    const out = execFileSync(cliPath(), ['--backends', 'cuda,hip'], {
      encoding: 'utf8',
      // Under the sanitizer build (scripts/test-native-asan.sh) the CLI, which has no node to
      // muddy the picture, also runs LeakSanitizer; other builds ignore the variable.
      env: { ...process.env, STRATA_CUDA_LIB: lib.cuda, STRATA_NVML_LIB: lib.nvml, STRATA_HIP_LIB: lib.hip6, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1' },
    });
    assert.deepStrictEqual(JSON.parse(out).devices, p.devices);
  });

  it('native/tools/gpu-compare.sh joins the CLI with nvidia-smi and checks the 1% bound', function () {
    if (!fs.existsSync('/bin/bash')) skipBecause(this, 'the script needs /bin/bash');
    // A stand-in nvidia-smi answering like the real one for the fake H100 (MiB, no units).
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    const mib = (b: number) => Math.round(b / 1048576);
    fs.writeFileSync(
      path.join(bin, 'nvidia-smi'),
      `#!/bin/sh\n# FAKE nvidia-smi (test only)\necho "00000000:65:00.0, ${mib(H100_TOTAL)}, ${mib(H100_NVML_FREE) - 3}"\necho "0000000F:01:00.0, ${mib(128849018880)}, [N/A]"\n`,
      { mode: 0o755 },
    );
    const out = execFileSync('/bin/bash', [path.join(repoRoot, 'native', 'tools', 'gpu-compare.sh'), cliPath()], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, STRATA_CUDA_LIB: lib.cuda, STRATA_NVML_LIB: lib.nvml },
    });
    assert.match(out, /0000:65:00\.0 .*nvml .*PASS/);
    assert.match(out, /0000:65:00\.0 .*cuda-context .*PASS/); // 84200000000 vs 81080 MiB: within 1%
    assert.match(out, /RESULT PASS/);
  });

  it('a driver that hangs costs the caller timeoutMs, not more: the fallback answers', async () => {
    for (const isolate of [true, false]) {
      const t0 = Date.now();
      const p = await probeAccelerators({ cudaLib: lib.cudaHang, backends: ['cuda', 'cpu'], timeoutMs: 300, isolate });
      assert.ok(Date.now() - t0 < 1200, `took ${Date.now() - t0} ms`);
      assert.strictEqual(p.via, 'fallback');
      assert.match(p.nativeError!, /did not answer within 300 ms/);
      assert.strictEqual(p.devices.filter((d) => d.backend === 'cpu').length, 1);
    }
    // In-process, the stuck probe keeps its worker (and the probe lock) until cuInit returns;
    // let it finish before anything else probes. Isolated, the process was simply killed.
    await new Promise((r) => setTimeout(r, 1500));
  });
});
