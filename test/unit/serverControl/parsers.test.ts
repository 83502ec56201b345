import * as assert from 'assert';
import {
  parseLlamaBenchJson,
  pickFastest,
  preferredBuildOrder,
  recommendedBackends,
  BenchResult,
  InstalledBuild,
} from '../../../src/daemon/installer/backends';
import { archiveEntryName } from '../../../src/daemon/installer/archiveLinks';
import { assetsForPlatform, classifyAsset, parseRelease } from '../../../src/daemon/installer/llamaRelease';
import { parseListDevices, parseVersionOutput, wellKnownServerPaths } from '../../../src/daemon/installer/findLlamaServer';

// What llama-server, llama-bench and the release API print, turned into data.

describe('installer parsers', () => {
  it('--version, new and old formats, after log lines', () => {
    const v = parseVersionOutput(
      '0.00.000.302 I srv  llama_server: initializing ...\nversion: 0.5.0-dev (build 1, commit de3ff81)\nbuilt with GNU 12.2.0 for Linux x86_64\n',
    );
    assert.deepStrictEqual(v, {
      version: 'version: 0.5.0-dev (build 1, commit de3ff81)',
      build: 1,
      commit: 'de3ff81',
      builtWith: 'built with GNU 12.2.0 for Linux x86_64',
    });
    assert.deepStrictEqual(parseVersionOutput('version: 4567 (abc1234)\n'), { version: 'version: 4567 (abc1234)', build: 4567, commit: 'abc1234' });
  });

  it('--list-devices: GPUs with memory, an RPC peer, and "(none)" on CPU builds', () => {
    const text = [
      'ggml_vulkan: Found 1 Vulkan devices:',
      'Available devices:',
      '  Vulkan0: AMD Radeon 8060S Graphics (RADV GFX1151) (65536 MiB, 60123 MiB free)',
      '  ROCm0: AMD Radeon Graphics (98304 MiB, 97000 MiB free)',
      '  CUDA1: NVIDIA H100 80GB HBM3 (81079 MiB, 80500 MiB free)',
      '  RPC[192.168.1.5:50052]: RPC[192.168.1.5:50052] (131072 MiB, 120000 MiB free)',
    ].join('\n');
    const d = parseListDevices(text);
    assert.deepStrictEqual(
      d.map((x) => [x.name, x.backend, x.totalMiB, x.freeMiB]),
      [
        ['Vulkan0', 'Vulkan', 65536, 60123],
        ['ROCm0', 'ROCm', 98304, 97000],
        ['CUDA1', 'CUDA', 81079, 80500],
        ['RPC[192.168.1.5:50052]', 'RPC', 131072, 120000],
      ],
    );
    assert.strictEqual(d[0].description, 'AMD Radeon 8060S Graphics (RADV GFX1151)');
    assert.deepStrictEqual(parseListDevices('Available devices:\n  (none)\n'), []);
  });

  it('--list-devices read from stdout and again from the tail of both streams: one device, not two', () => {
    // What inspectLlamaServer hands the parser: stdout, then the last lines of stdout+stderr.
    const out = 'Available devices:\n  Vulkan0: llvmpipe (LLVM 15.0.6, 256 bits) (2048 MiB, 2048 MiB free)\n';
    const text = `${out}\n0.00.000.466 I srv  llama_server: initializing ...\n${out}`;
    assert.deepStrictEqual(
      parseListDevices(text).map((d) => [d.name, d.description, d.totalMiB]),
      [['Vulkan0', 'llvmpipe (LLVM 15.0.6, 256 bits)', 2048]],
    );
  });

  it('llama-bench JSON: pp and tg rows', () => {
    const rows = [
      { n_prompt: 512, n_gen: 0, avg_ts: 2512.3, backends: 'CUDA', gpu_info: 'NVIDIA H100' },
      { n_prompt: 0, n_gen: 128, avg_ts: 84.4, backends: 'CUDA' },
    ];
    const f = parseLlamaBenchJson(`warming up\n${JSON.stringify(rows)}\n`);
    assert.deepStrictEqual(f, { pp: 2512.3, tg: 84.4, nPrompt: 512, nGen: 128, backends: 'CUDA', gpuInfo: 'NVIDIA H100' });
    assert.throws(() => parseLlamaBenchJson('[]'), /lack/);
  });

  it('the fastest build: generation first, prefill breaks near-ties', () => {
    const r = (id: string, pp: number, tg: number): BenchResult => ({
      buildId: id,
      backend: id,
      serverPath: '',
      at: '',
      figures: { pp, tg, nPrompt: 512, nGen: 128 },
    });
    assert.strictEqual(pickFastest([r('hip', 900, 40), r('vulkan', 600, 50)])?.buildId, 'vulkan');
    assert.strictEqual(pickFastest([r('hip', 900, 50), r('vulkan', 600, 50.5)])?.buildId, 'hip');
    assert.strictEqual(pickFastest([{ buildId: 'x', backend: 'x', serverPath: '', at: '', error: 'e' }]), undefined);
  });

  it('build order: benchmark winner, then probe order, GPU before CPU, newest first', () => {
    const b = (id: string, backend: string, installedAt = ''): InstalledBuild => ({ id, backend, source: 'build', dir: '', serverPath: '', installedAt });
    const builds = [b('cpu', 'cpu'), b('vk-old', 'vulkan', '2025-01-01'), b('vk-new', 'vulkan', '2026-01-01'), b('hip', 'hip')];
    assert.deepStrictEqual(
      preferredBuildOrder(builds).map((x) => x.id),
      ['vk-new', 'vk-old', 'hip', 'cpu'],
    );
    assert.deepStrictEqual(
      preferredBuildOrder(builds, { probeBackends: ['vulkan', 'hip', 'cpu'] }).map((x) => x.id),
      ['vk-new', 'vk-old', 'hip', 'cpu'],
    );
    assert.deepStrictEqual(preferredBuildOrder(builds, { defaultId: 'cpu' }).map((x) => x.id)[0], 'cpu');
    assert.deepStrictEqual(recommendedBackends(['hip', 'amdgpu', 'cpu'], 'linux'), ['hip', 'vulkan', 'cpu']);
    assert.deepStrictEqual(recommendedBackends([], 'linux'), ['cpu']);
  });

  it("release assets: names classified, cudart and sources ignored, the platform's first", () => {
    assert.deepStrictEqual(classifyAsset('llama-b6100-bin-ubuntu-vulkan-x64.tar.gz'), {
      tag: 'b6100',
      os: 'ubuntu',
      variant: 'vulkan',
      arch: 'x64',
      kind: 'tar.gz',
      backend: 'vulkan',
    });
    assert.strictEqual(classifyAsset('llama-b6100-bin-win-cuda-12.4-x64.zip')?.backend, 'cuda');
    assert.strictEqual(classifyAsset('llama-b6100-bin-win-hip-radeon-x64.zip')?.backend, 'hip');
    assert.strictEqual(classifyAsset('llama-b6100-bin-macos-arm64.zip')?.backend, 'metal');
    assert.strictEqual(classifyAsset('llama-b6100-bin-win-cpu-x64.zip')?.backend, 'cpu');
    assert.strictEqual(classifyAsset('cudart-llama-bin-win-cuda-12.4-x64.zip'), undefined);
    assert.strictEqual(classifyAsset('llama-b6100-xcframework.zip'), undefined);
    assert.strictEqual(classifyAsset('llama-b1-bin-ubuntu-/../../pwned-x64.tar.gz'), undefined, 'a name with a path');
    const rel = parseRelease(
      {
        tag_name: 'b6100',
        assets: [
          { name: 'llama-b6100-bin-ubuntu-x64.tar.gz', browser_download_url: 'a/cpu', size: 10, digest: 'sha256:' + 'A'.repeat(64) },
          { name: 'llama-b6100-bin-ubuntu-vulkan-x64.tar.gz', browser_download_url: 'a/vk', size: 20 },
          { name: 'llama-b6100-bin-win-cpu-x64.zip', browser_download_url: 'a/win' },
          { name: 'broken' },
        ],
      },
      'http://127.0.0.1:9/releases/latest',
    );
    assert.strictEqual(rel.assets.length, 3);
    assert.strictEqual(rel.assets[0].sha256, 'a'.repeat(64));
    assert.strictEqual(rel.assets[0].url, 'http://127.0.0.1:9/releases/a/cpu');
    assert.deepStrictEqual(
      assetsForPlatform(rel, { platform: 'linux', arch: 'x64', prefer: ['vulkan', 'cpu'] }).map((a) => a.facts.backend),
      ['vulkan', 'cpu'],
    );
    assert.deepStrictEqual(
      assetsForPlatform(rel, { platform: 'linux', arch: 'x64' }).map((a) => a.facts.backend),
      ['vulkan', 'cpu'],
    );
    assert.deepStrictEqual(
      assetsForPlatform(rel, { platform: 'win32', arch: 'x64' }).map((a) => a.name),
      ['llama-b6100-bin-win-cpu-x64.zip'],
    );
  });

  it('archive entry paths cannot escape the destination', () => {
    assert.strictEqual(archiveEntryName('build/bin/llama-server'), 'build/bin/llama-server');
    assert.strictEqual(archiveEntryName('./a/./b'), 'a/b');
    for (const bad of ['../x', '/etc/passwd', 'a/../../x', 'C:\\x', 'a\\..\\..\\x', 'a\u0000b']) assert.throws(() => archiveEntryName(bad), /unsafe path/, bad);
  });

  it('well-known places include Homebrew on macOS and ~/llama.cpp/build/bin', () => {
    assert.ok(wellKnownServerPaths('darwin', '/Users/u').includes('/opt/homebrew/bin/llama-server'));
    assert.ok(wellKnownServerPaths('linux', '/home/u').includes('/home/u/llama.cpp/build/bin/llama-server'));
    assert.ok(
      wellKnownServerPaths('win32', 'C:\\Users\\u', { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }).some((p) =>
        p.endsWith('WinGet\\Links\\llama-server.exe'),
      ),
    );
  });
});
