import * as assert from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildFailureMessage } from '../../../src/daemon/installer/buildFailure';
import { LlamaBuild, llamaBuildArgs, llamaBuildDirName, llamaCmakeDefines, normalizeGpuTargets } from '../../../src/daemon/installer/buildSpec';
import { ToolProbe, checkToolchain, minCmakeVersion, parseCmakeVersion } from '../../../src/daemon/installer/buildToolchain';
import { parseBuildPercent } from '../../../src/daemon/installer/compileLlama';
import { LlamaBuildOptions, ensureLlamaBuild } from '../../../src/daemon/installer/llamaBuild';
import { InstallProgress, LlamaSource } from '../../../src/daemon/installer/llamaSource';
import { findOnPath } from '../../../src/daemon/installer/runProcess';
import { skipBecause } from '../../harness/skips';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const CHILD = path.join(__dirname, 'child.ts');

function tmpdir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `strata-${tag}-`));
}

function probe(over: Partial<ToolProbe> & { onPath?: string[]; files?: string[] } = {}): ToolProbe {
  const onPath = over.onPath ?? ['cmake', 'c++'];
  const files = new Set(over.files ?? []);
  return {
    platform: over.platform ?? 'linux',
    env: over.env ?? {},
    which: over.which ?? ((c) => (onPath.includes(c) ? `/usr/bin/${c}` : undefined)),
    exists: over.exists ?? ((p) => files.has(p) || [...onPath].some((c) => p === `/usr/bin/${c}`)),
  };
}

/**
 * A two-file CMake project with llama.cpp's two target names: the whole pipeline (toolchain
 * check, configure, build, progress, verify, stamp, lock) with real cmake and a real compiler in
 * seconds instead of minutes.
 */
function fakeLlamaSource(root: string, opts: { broken?: boolean } = {}): LlamaSource {
  const src = path.join(root, 'fake-llama');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(
    path.join(src, 'CMakeLists.txt'),
    [
      'cmake_minimum_required(VERSION 3.14)',
      'project(fake_llama CXX)',
      'set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)',
      'add_executable(llama-server server.cpp)',
      'add_executable(ggml-rpc-server rpc.cpp)',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    path.join(src, 'server.cpp'),
    `#include <cstdio>
#include <cstring>
int main(int argc, char ** argv) {
  if (argc > 1 && !strcmp(argv[1], "--version")) {
    fprintf(stderr, "init ...\\nversion: 0.0.0-fake (build 1, commit ${COMMIT.slice(0, 7)})\\nbuilt with test\\n");
    return 0;
  }
  return 1;
}
`,
  );
  fs.writeFileSync(
    path.join(src, 'rpc.cpp'),
    opts.broken ? 'int main() { this is not C++; }\n' : '#include <cstdio>\nint main() { fprintf(stderr, "Usage: rpc\\n"); return 0; }\n',
  );
  return { srcDir: src, commit: COMMIT, tag: 'fake', nodeLlamaCppVersion: '0.0.0' };
}

const haveCmake = !!findOnPath('cmake') && !!(findOnPath('c++') || findOnPath('g++') || findOnPath('clang++'));

describe('installer/llamaBuild (pure)', () => {
  it('builds the cmake defines per backend', () => {
    const common = [
      '-DCMAKE_BUILD_TYPE=Release',
      '-DGGML_RPC=ON',
      '-DLLAMA_OPENSSL=OFF',
      '-DLLAMA_USE_PREBUILT_UI=OFF',
      '-DBUILD_SHARED_LIBS=OFF',
      '-DLLAMA_BUILD_TESTS=OFF',
      '-DLLAMA_BUILD_EXAMPLES=OFF',
      '-DGGML_NATIVE=OFF',
    ];
    assert.deepStrictEqual(llamaCmakeDefines('cpu'), common);
    assert.deepStrictEqual(llamaCmakeDefines('vulkan'), [...common, '-DGGML_VULKAN=ON']);
    assert.deepStrictEqual(llamaCmakeDefines('hip', ['gfx1151']), [...common, '-DGGML_HIP=ON', '-DAMDGPU_TARGETS=gfx1151']);
    assert.deepStrictEqual(llamaCmakeDefines('hip'), [...common, '-DGGML_HIP=ON']);
    assert.deepStrictEqual(llamaCmakeDefines('cuda', ['86', '90']), [...common, '-DGGML_CUDA=ON', '-DCMAKE_CUDA_ARCHITECTURES=86;90']);
    assert.deepStrictEqual(llamaCmakeDefines('cuda'), [...common, '-DGGML_CUDA=ON', '-DCMAKE_CUDA_ARCHITECTURES=native']);
  });

  it('builds only the two targets, in Release', () => {
    assert.deepStrictEqual(llamaBuildArgs('/b', 3), ['--build', '/b', '--config', 'Release', '-j', '3', '--target', 'llama-server', 'ggml-rpc-server']);
  });

  it('names build dirs by short commit, backend and targets', () => {
    assert.strictEqual(llamaBuildDirName(COMMIT, 'cpu'), 'build-0123456789ab-cpu');
    assert.strictEqual(llamaBuildDirName(COMMIT, 'hip', ['gfx1100', 'gfx1151']), 'build-0123456789ab-hip-gfx1100_gfx1151');
    assert.strictEqual(llamaBuildDirName(COMMIT, 'hip', ['gfx90a:xnack+']), 'build-0123456789ab-hip-gfx90a_xnack_');
  });

  it('normalises and validates GPU targets', () => {
    assert.deepStrictEqual(normalizeGpuTargets('hip', ['gfx1151,gfx1100', 'gfx1151']), ['gfx1100', 'gfx1151']);
    assert.deepStrictEqual(normalizeGpuTargets('cuda', ['90;86-real']), ['86-real', '90']);
    assert.deepStrictEqual(normalizeGpuTargets('cpu', undefined), []);
    assert.deepStrictEqual(normalizeGpuTargets('cpu', ['']), []);
    assert.throws(() => normalizeGpuTargets('cpu', ['gfx1151']), /GPU targets apply only to the hip and cuda backends, not cpu/);
    assert.throws(() => normalizeGpuTargets('hip', ['sm_90']), /Invalid hip GPU target sm_90: use names like gfx1151/);
    assert.throws(() => normalizeGpuTargets('cuda', ['$(rm -rf)']), /Invalid cuda GPU target/);
  });

  it('reads percent from Makefile and Ninja progress lines', () => {
    assert.strictEqual(parseBuildPercent('[ 45%] Building CXX object ggml/src/ggml.cpp.o'), 45);
    assert.strictEqual(parseBuildPercent('[100%] Built target llama-server'), 100);
    assert.strictEqual(parseBuildPercent('[  0%] Generating build details'), 0);
    assert.strictEqual(parseBuildPercent('[12/48] Building CXX object x.o'), 25);
    assert.strictEqual(parseBuildPercent('-- Configuring done'), undefined);
    assert.strictEqual(parseBuildPercent('foo.cpp:1: warning [ 45%]'), undefined);
  });

  it('parses cmake --version and knows each backend minimum', () => {
    assert.deepStrictEqual(parseCmakeVersion('cmake version 3.25.1\n\nCMake suite maintained'), [3, 25, 1]);
    assert.strictEqual(parseCmakeVersion('nonsense'), undefined);
    assert.deepStrictEqual(minCmakeVersion('hip'), [3, 21]);
    assert.deepStrictEqual(minCmakeVersion('cuda'), [3, 24]);
    assert.deepStrictEqual(minCmakeVersion('cuda', ['90']), [3, 18]);
  });

  describe('toolchain check', () => {
    it('wants cmake first, then a C++ compiler', () => {
      const noCmake = checkToolchain('cpu', probe({ onPath: ['c++'] }));
      assert.ok(!noCmake.ok && noCmake.code === 'TOOL_MISSING' && /^cmake was not found on PATH: install it \(Debian/.test(noCmake.message));
      const noCxx = checkToolchain('cpu', probe({ onPath: ['cmake'] }));
      assert.ok(
        !noCxx.ok &&
          /^A C\+\+ compiler \(c\+\+, g\+\+ or clang\+\+, or \$CXX\) was not found on PATH: install it \(Debian\/Ubuntu: sudo apt-get install g\+\+/.test(
            noCxx.message,
          ),
      );
      assert.ok(checkToolchain('cpu', probe({ onPath: ['cmake', 'clang++'] })).ok);
      // $CXX wins over the defaults, and must itself exist.
      assert.ok(!checkToolchain('cpu', probe({ onPath: ['cmake', 'c++'], env: { CXX: 'clang++-18' } })).ok);
      // MSVC is found by cmake's Visual Studio generator, not on PATH.
      assert.ok(checkToolchain('cpu', probe({ platform: 'win32', onPath: ['cmake'] })).ok);
    });

    it('wants glslc for vulkan', () => {
      const r = checkToolchain('vulkan', probe());
      assert.ok(!r.ok && r.code === 'TOOLCHAIN_MISSING');
      assert.strictEqual(
        r.message,
        "The Vulkan SDK's shader compiler glslc was not found on PATH or in $VULKAN_SDK/bin: install the Vulkan SDK (Debian/Ubuntu: sudo apt-get install libvulkan-dev glslc) and retry.",
      );
      assert.ok(checkToolchain('vulkan', probe({ onPath: ['cmake', 'c++', 'glslc'] })).ok);
      assert.ok(checkToolchain('vulkan', probe({ env: { VULKAN_SDK: '/sdk' }, files: ['/sdk/bin/glslc'] })).ok);
    });

    it('wants nvcc for cuda and points cmake at /usr/local/cuda when it is off PATH', () => {
      const r = checkToolchain('cuda', probe());
      assert.ok(!r.ok && /^The CUDA compiler nvcc was not found/.test(r.message));
      const off = checkToolchain('cuda', probe({ files: ['/usr/local/cuda/bin/nvcc'] }));
      assert.deepStrictEqual(off, { ok: true, env: { CUDACXX: '/usr/local/cuda/bin/nvcc' } });
      assert.deepStrictEqual(checkToolchain('cuda', probe({ onPath: ['cmake', 'c++', 'nvcc'] })), { ok: true, env: {} });
    });

    it('wants ROCm for hip and hands cmake its clang', () => {
      const r = checkToolchain('hip', probe());
      assert.ok(!r.ok && /^ROCm\/HIP was not found .* install ROCm 6\.1 or newer/.test(r.message));
      const ok = checkToolchain('hip', probe({ files: ['/opt/rocm/bin/hipconfig', '/opt/rocm/llvm/bin/clang'] }));
      assert.deepStrictEqual(ok, { ok: true, env: { HIPCXX: '/opt/rocm/llvm/bin/clang', HIP_PATH: '/opt/rocm', ROCM_PATH: '/opt/rocm' } });
      const custom = checkToolchain('hip', probe({ env: { ROCM_PATH: '/r', HIPCXX: '/my/clang' }, files: ['/r/bin/hipconfig'] }));
      assert.deepStrictEqual(custom, { ok: true, env: { HIP_PATH: '/r' } });
    });
  });

  it('writes one actionable sentence for build failures', () => {
    const tail = 'x\n/src/rpc.cpp:1:18: error: expected primary-expression\nmake[2]: *** [x] Error 1';
    assert.strictEqual(
      buildFailureMessage('compile', 'cpu', 2, tail, '/b/strata-build.log'),
      'Compiling llama.cpp (cpu) failed at "/src/rpc.cpp:1:18: error: expected primary-expression": read /b/strata-build.log for the full output, fix the cause and retry (the build resumes where it stopped).',
    );
    assert.match(
      buildFailureMessage('compile', 'cpu', 2, tail, '/b/l', '/b'),
      /it resumed an earlier build; if it fails the same way again, delete \/b to start clean\)\.$/,
    );
    assert.match(
      buildFailureMessage('compile', 'cuda', 2, 'c++: fatal error: Killed signal terminated program cc1plus', '/l'),
      /ran out of memory.*retry with fewer parallel jobs \(--jobs 1\)/,
    );
    assert.strictEqual(
      buildFailureMessage(
        'configure',
        'cuda 90',
        1,
        'CMake Error at ggml/src/ggml-cuda/CMakeLists.txt:165 (target_link_libraries):\n  Target "ggml-cuda" links to:\n    CUDA::cublas',
        '/l',
      ),
      "Configuring llama.cpp (cuda 90) failed because the CUDA toolkit lacks cuBLAS, which llama.cpp's CUDA backend needs: install the cuBLAS development files of that toolkit (NVIDIA's apt repo: libcublas-dev-<version>) and retry; the full log is /l.",
    );
    assert.match(
      buildFailureMessage('configure', 'hip gfx1151', 1, 'CMake Error at ggml/src/ggml-hip/CMakeLists.txt:40', '/l'),
      /^Configuring llama\.cpp \(hip gfx1151\) failed at "CMake Error/,
    );
  });

  it('names the Vulkan SDK parts that are missing or too old (output of real failed builds on Debian 12)', () => {
    const noSpirv =
      'CMake Error at ggml/src/ggml-vulkan/CMakeLists.txt:14 (find_package):\n  Could not find a package configuration file provided by "SPIRV-Headers"\n  with any of the following names:';
    assert.match(
      buildFailureMessage('configure', 'vulkan', 1, noSpirv, '/l'),
      /failed because the SPIR-V headers were not found: install them \(Debian\/Ubuntu: sudo apt-get install spirv-headers/,
    );
    const oldGlslc = [
      'cannot compile fa_decode_ph1_cm1 (exit code 1)',
      '/bin/glslc -fshader-stage=compute --target-env=vulkan1.2 /s/vulkan-shaders/flash_attn_decode_phase_1.comp -o /b/fa_decode_ph1_cm1.spv',
      "/s/vulkan-shaders/flash_attn_decode_phase_1.comp:11: warning: '#extension' : extension not supported: GL_KHR_cooperative_matrix",
      "/s/vulkan-shaders/flash_attn_decode_phase_1.comp:115: error: 'coopmat' : undeclared identifier",
      'vulkan-shaders-gen: one or more shaders failed to compile',
      'gmake[3]: *** [ggml/src/ggml-vulkan/CMakeFiles/ggml-vulkan.dir/build.make:458: ggml/src/ggml-vulkan/flash_attn_decode_phase_1.comp.cpp] Error 1',
    ].join('\n');
    assert.match(
      buildFailureMessage('compile', 'vulkan', 2, oldGlslc, '/l'),
      /^Compiling llama\.cpp \(vulkan\) failed because the Vulkan SDK's shader compiler glslc is too old for this llama\.cpp \(its shaders need GL_KHR_cooperative_matrix; Debian 12's glslc lacks it\): .*point VULKAN_SDK at it and retry; the full log is \/l\.$/,
    );
    const oldHeaders = "/s/ggml-vulkan.cpp:4828:5: error: 'VkPhysicalDeviceCooperativeMatrixFeaturesKHR' was not declared in this scope";
    assert.match(buildFailureMessage('compile', 'vulkan', 2, oldHeaders, '/l'), /the Vulkan headers are older than the glslc in use/);
  });
});

describe('installer/llamaBuild (real cmake, fake tiny project)', function () {
  this.timeout(120_000);
  before(function () {
    if (!haveCmake) skipBecause(this, 'cmake is not on PATH (apt-get install cmake)');
  });

  it('says which tool is missing, judged on the PATH it is given', async function () {
    if (process.platform === 'win32') skipBecause(this, 'not on Windows: the fake tool PATH is POSIX shell scripts');
    const root = tmpdir('tools');
    const source = fakeLlamaSource(root);
    const cacheDir = path.join(root, 'cache');
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    await assert.rejects(ensureLlamaBuild({ backend: 'cpu', source, cacheDir, env: { PATH: empty } }), (e: Error & { code?: string }) => {
      assert.strictEqual(e.code, 'TOOL_MISSING');
      assert.match(e.message, /^cmake was not found on PATH: install it \(Debian\/Ubuntu: sudo apt-get install cmake.*\) and retry\.$/);
      return true;
    });
    const onlyCmake = path.join(root, 'only-cmake');
    fs.mkdirSync(onlyCmake);
    fs.symlinkSync(findOnPath('cmake')!, path.join(onlyCmake, 'cmake'));
    await assert.rejects(ensureLlamaBuild({ backend: 'cpu', source, cacheDir, env: { PATH: onlyCmake } }), (e: Error) =>
      /^A C\+\+ compiler .* was not found on PATH: install it .* and retry\.$/.test(e.message),
    );
    fs.symlinkSync((findOnPath('c++') ?? findOnPath('g++') ?? findOnPath('clang++'))!, path.join(onlyCmake, 'c++'));
    await assert.rejects(ensureLlamaBuild({ backend: 'vulkan', source, cacheDir, env: { PATH: onlyCmake } }), /glslc was not found/);
    assert.ok(!fs.existsSync(path.join(cacheDir, 'llama.cpp', 'build-0123456789ab-cpu')), 'failed checks leave nothing behind');
  });

  it('builds once for two concurrent callers, then answers from the stamp in milliseconds', async () => {
    const root = tmpdir('build');
    const source = fakeLlamaSource(root);
    const cacheDir = path.join(root, 'cache');
    const events: InstallProgress[][] = [[], []];
    const opts = (i: number): LlamaBuildOptions => ({ backend: 'cpu', source, cacheDir, jobs: 2, lockStaleMs: 5000, onProgress: (p) => events[i]!.push(p) });
    const [a, b] = await Promise.all([ensureLlamaBuild(opts(0)), ensureLlamaBuild(opts(1))]);
    assert.deepStrictEqual([a.built, b.built].sort(), [false, true], 'exactly one compiled');
    assert.strictEqual(a.serverPath, b.serverPath);
    const builder = a.built ? 0 : 1;
    assert.ok(
      events[1 - builder]!.some((e) => e.phase === 'wait'),
      'the other one waited',
    );
    assert.ok(!events[1 - builder]!.some((e) => e.phase === 'configure'), 'and did not configure');
    const percents = events[builder]!.filter((e) => e.phase === 'build' && e.percent !== undefined).map((e) => e.percent!);
    assert.ok(percents.includes(100) && percents.every((p, i) => i === 0 || p > percents[i - 1]!), `monotonic: ${percents.join(',')}`);

    assert.strictEqual(a.buildDir, path.join(cacheDir, 'llama.cpp', 'build-0123456789ab-cpu'));
    assert.strictEqual(a.serverPath, path.join(a.buildDir, 'bin', 'llama-server'));
    assert.strictEqual(a.rpcServerPath, path.join(a.buildDir, 'bin', 'ggml-rpc-server'));
    assert.strictEqual(a.binDir, path.join(a.buildDir, 'bin'));
    assert.match(a.version, /^version: 0\.0\.0-fake \(build 1, commit 0123456\)/);
    assert.match(fs.readFileSync(a.logPath, 'utf8'), /Built target llama-server/);

    const stamp = path.join(a.buildDir, 'strata-build.json');
    const before = fs.statSync(stamp).mtimeMs;
    const t0 = process.hrtime.bigint();
    const c = await ensureLlamaBuild({ backend: 'cpu', source, cacheDir });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.strictEqual(c.built, false);
    assert.ok(ms < 50, `cached lookup took ${ms} ms`);
    assert.strictEqual(fs.statSync(stamp).mtimeMs, before);
    assert.deepStrictEqual({ ...c, built: true }, a.built ? a : { ...b, built: true });
  });

  it('shares one build with a racing process', async function () {
    const root = tmpdir('race');
    const source = fakeLlamaSource(root);
    const cacheDir = path.join(root, 'cache');
    const opts: LlamaBuildOptions = { backend: 'cpu', source, cacheDir, jobs: 1, lockStaleMs: 5000 };
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', CHILD, 'build', JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.on('exit', r));
    const mine = await ensureLlamaBuild(opts);
    await exited;
    const theirs = JSON.parse(out) as LlamaBuild & { error?: string };
    assert.strictEqual(theirs.error, undefined);
    assert.strictEqual(theirs.serverPath, mine.serverPath);
    assert.strictEqual([mine.built, theirs.built].filter(Boolean).length, 1, 'exactly one compiled');
  });

  it('resumes: rebuilds a missing binary without reconfiguring, reconfigures without CMakeCache', async () => {
    const root = tmpdir('resume');
    const source = fakeLlamaSource(root);
    const cacheDir = path.join(root, 'cache');
    const first = await ensureLlamaBuild({ backend: 'cpu', source, cacheDir });
    assert.ok(first.built);

    fs.rmSync(first.rpcServerPath);
    const phases: string[] = [];
    const second = await ensureLlamaBuild({ backend: 'cpu', source, cacheDir, onProgress: (p) => phases.push(p.phase) });
    assert.ok(second.built && fs.existsSync(second.rpcServerPath));
    assert.ok(!phases.includes('configure'), phases.join(','));
    assert.match(fs.readFileSync(second.logPath, 'utf8'), /configure skipped/);

    fs.rmSync(path.join(first.buildDir, 'CMakeCache.txt'));
    fs.rmSync(path.join(first.buildDir, 'strata-build.json'));
    phases.length = 0;
    const third = await ensureLlamaBuild({ backend: 'cpu', source, cacheDir, onProgress: (p) => phases.push(p.phase) });
    assert.ok(third.built);
    assert.ok(phases.includes('configure'));
  });

  it('reconfigures when a toolchain variable changed, e.g. VULKAN_SDK set after "glslc is too old"', async () => {
    const root = tmpdir('toolchain');
    const source = fakeLlamaSource(root);
    const cacheDir = path.join(root, 'cache');
    const first = await ensureLlamaBuild({ backend: 'cpu', source, cacheDir });
    // An unfinished build (no stamp, a binary missing), retried with another SDK: cmake must look again.
    fs.rmSync(first.rpcServerPath);
    fs.rmSync(path.join(first.buildDir, 'strata-build.json'));
    const phases: string[] = [];
    const sdk = path.join(root, 'sdk');
    fs.mkdirSync(sdk);
    const second = await ensureLlamaBuild({
      backend: 'cpu',
      source,
      cacheDir,
      env: { ...process.env, VULKAN_SDK: sdk },
      onProgress: (p) => phases.push(p.phase),
    });
    assert.ok(second.built);
    assert.ok(phases.includes('configure'), phases.join(','));
    assert.match(fs.readFileSync(path.join(first.buildDir, 'strata-configure.json'), 'utf8'), /"VULKAN_SDK":/);
  });

  it('cancels cleanly and the next run completes', async function () {
    const root = tmpdir('cancel');
    const source = fakeLlamaSource(root);
    const cacheDir = path.join(root, 'cache');
    const ac = new AbortController();
    const run = ensureLlamaBuild({
      backend: 'cpu',
      source,
      cacheDir,
      signal: ac.signal,
      onProgress: (p) => p.phase === 'configure' && setTimeout(() => ac.abort(), 100),
    });
    await assert.rejects(run, (e: Error & { code?: string }) => e.code === 'ABORTED' && /cancelled; run it again/.test(e.message));
    const buildDir = path.join(cacheDir, 'llama.cpp', 'build-0123456789ab-cpu');
    assert.ok(!fs.existsSync(path.join(buildDir, 'strata-build.json')));
    assert.ok(!fs.existsSync(`${buildDir}.lock`), 'lock released');
    const done = await ensureLlamaBuild({ backend: 'cpu', source, cacheDir });
    assert.ok(done.built);
  });

  it('kills what a dead builder left running in the build dir before building there', async function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: finds leftover builders through /proc');
    const root = tmpdir('orphan');
    const source = fakeLlamaSource(root);
    const cacheDir = path.join(root, 'cache');
    const buildDir = path.join(cacheDir, 'llama.cpp', 'build-0123456789ab-cpu');
    fs.mkdirSync(path.join(buildDir, 'sub'), { recursive: true });
    // Stands in for a make whose parent was SIGKILLed: its own group, cwd in the build dir
    // (a shell named sh, as make's recipe shells are).
    const orphan = spawn('/bin/sh', ['-c', 'sleep 60; :'], { cwd: path.join(buildDir, 'sub'), detached: true, stdio: 'ignore' });
    const gone = new Promise((r) => orphan.on('exit', (_code, sig) => r(sig)));
    // Not a build tool: someone's program that merely runs from the build dir is left alone.
    const bystander = spawn('sleep', ['60'], { cwd: path.join(buildDir, 'sub'), detached: true, stdio: 'ignore' });
    try {
      const built = await ensureLlamaBuild({ backend: 'cpu', source, cacheDir });
      assert.ok(built.built);
      assert.strictEqual(await gone, 'SIGTERM');
      assert.strictEqual(bystander.exitCode, null);
      assert.strictEqual(bystander.signalCode, null);
    } finally {
      bystander.kill('SIGKILL');
      try {
        process.kill(-orphan.pid!, 'SIGKILL'); // the shell's own sleep child
      } catch {
        /* already gone */
      }
    }
  });

  it('refuses binaries that report another commit than the source it was given', async () => {
    const root = tmpdir('commit');
    const source = { ...fakeLlamaSource(root), commit: 'f'.repeat(40) };
    await assert.rejects(ensureLlamaBuild({ backend: 'cpu', source, cacheDir: path.join(root, 'cache') }), (e: Error & { code?: string }) => {
      assert.strictEqual(e.code, 'VERIFY_FAILED');
      assert.match(e.message, /^The built llama-server reports commit 0123456, not ffffffffffff/);
      return true;
    });
  });

  it('names the log when compilation fails', async () => {
    const root = tmpdir('broken');
    const source = fakeLlamaSource(root, { broken: true });
    const cacheDir = path.join(root, 'cache');
    await assert.rejects(ensureLlamaBuild({ backend: 'cpu', source, cacheDir }), (e: Error & { code?: string; logPath?: string; outputTail?: string }) => {
      assert.strictEqual(e.code, 'BUILD_FAILED');
      assert.ok(e.logPath && e.message.includes(e.logPath), e.message);
      assert.match(e.message, /^Compiling llama\.cpp \(cpu\) failed at ".*rpc\.cpp.*error/);
      assert.match(fs.readFileSync(e.logPath!, 'utf8'), /rpc\.cpp/);
      return true;
    });
  });
});
