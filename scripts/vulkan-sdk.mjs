#!/usr/bin/env node
// A Vulkan SDK good enough for the pinned llama.cpp, for machines whose distribution ships an
// older one (Debian 12: glslc from shaderc 2023.2 / glslang 12 and Vulkan headers 1.3.239).
// llama.cpp's Vulkan build at the pinned commit compiles a GL_KHR_cooperative_matrix shader
// unconditionally (flash_attn_decode_phase_1.comp) and needs VkPhysicalDeviceCooperativeMatrix-
// FeaturesKHR in the headers once glslc supports it; Debian 12's glslc fails on the first, its
// headers on the second. Ubuntu 24.04, Debian 13 and the LunarG SDK are new enough.
//
// When the system's glslc is too old, this assembles a VULKAN_SDK-shaped folder from Debian 13's
// packages (glslc, libshaderc1, libvulkan-dev, spirv-headers), fetched with apt-get download
// through a private apt configuration (the system's sources, lists and dpkg state are not
// touched). Debian 13's glslc needs glibc 2.38, so it runs under Debian 13's own loader and libc
// from the same folder (bin/glslc is a wrapper that does so). The loader library stays the
// system's (lib/libvulkan.so points at it): headers may be newer than the loader.
//
//   <cache>/toolchains/vulkan-sdk-debian13/
//     bin/glslc   include/   share/cmake/SPIRV-Headers/   lib/libvulkan.so   root/ (unpacked .debs)
//
// Usage: node scripts/vulkan-sdk.mjs   prints the folder to use as VULKAN_SDK, or nothing when the
// system's own tools are new enough. ensureVulkanSdkEnv() gives the environment for a build.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const DEBS = ['glslc', 'libshaderc1', 'libc6', 'libgcc-s1', 'libstdc++6', 'libvulkan-dev', 'spirv-headers'];
const SUITE = 'trixie';
const NAME = 'vulkan-sdk-debian13';

function cacheDir(env) {
  if (env.STRATA_CACHE_DIR) return env.STRATA_CACHE_DIR;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'strata');
}

// What llama.cpp's CMake tests for GL_KHR_cooperative_matrix (feature-tests/coopmat.comp), in short.
const COOPMAT_PROBE = `#version 460
#extension GL_KHR_cooperative_matrix : require
void main() {}
`;

function glslcKnowsCoopmat(glslc, env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-glslc-'));
  try {
    const src = path.join(dir, 'probe.comp');
    fs.writeFileSync(src, COOPMAT_PROBE);
    const r = spawnSync(glslc, ['-fshader-stage=compute', '--target-env=vulkan1.3', src, '-o', path.join(dir, 'probe.spv')], {
      encoding: 'utf8',
      env,
      timeout: 30_000,
    });
    // llama.cpp's shader generator fails a shader on any stderr output, warnings included.
    return r.status === 0 && !(r.stderr ?? '').trim();
  } catch {
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function onPath(bin, env) {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, bin))) return path.join(dir, bin);
  }
  return undefined;
}

/** True when the system's glslc and headers build the pinned llama.cpp's Vulkan backend. */
export function systemVulkanSdkOk(env = process.env) {
  const glslc = onPath('glslc', env);
  if (!glslc || !glslcKnowsCoopmat(glslc, env)) return false;
  try {
    return /VK_KHR_cooperative_matrix\b/.test(fs.readFileSync('/usr/include/vulkan/vulkan_core.h', 'utf8'));
  } catch {
    return false;
  }
}

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10 * 60_000, ...opts });
  if (r.status !== 0) {
    const out = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-5).join(' | ');
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${out || r.error?.message}`);
  }
  return r.stdout;
}

/**
 * Downloads Debian 13's glslc, its libraries and the Vulkan/SPIR-V headers (and `extra`, e.g.
 * libvulkan1 for a machine without a loader) as .deb files into `dest`, through a private apt
 * configuration: the system's sources, package lists and dpkg state stay as they are.
 */
export function downloadDebianVulkanDebs(dest, env = process.env, extra = []) {
  const apt = path.join(dest, '.apt');
  for (const d of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(apt, d), { recursive: true });
  fs.writeFileSync(path.join(apt, 'sources.list'), `deb http://deb.debian.org/debian ${SUITE} main\n`);
  fs.writeFileSync(path.join(apt, 'status'), '');
  const conf = path.join(apt, 'apt.conf');
  fs.writeFileSync(
    conf,
    [
      `Dir::Etc::SourceList "${apt}/sources.list";`,
      'Dir::Etc::SourceParts "/nonexistent";',
      `Dir::State::Lists "${apt}/lists";`,
      `Dir::Cache "${apt}/cache";`,
      `Dir::State::status "${apt}/status";`,
      'APT::Architecture "amd64";',
      // apt's sandbox user cannot write into a root-owned temp folder.
      'APT::Sandbox::User "root";',
    ].join('\n') + '\n',
  );
  const aptEnv = { ...env, APT_CONFIG: conf, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env: aptEnv });
  run('apt-get', ['download', '-qq', ...DEBS, ...extra], { env: aptEnv, cwd: dest });
  fs.rmSync(apt, { recursive: true, force: true });
  return fs
    .readdirSync(dest)
    .filter((f) => f.endsWith('.deb'))
    .map((f) => path.join(dest, f));
}

/** Builds the folder (once; later calls find it). Returns its path. */
export function ensureDebianVulkanSdk(env = process.env) {
  const dir = path.join(cacheDir(env), 'toolchains', NAME);
  if (fs.existsSync(path.join(dir, '.complete'))) return dir;
  if (process.platform !== 'linux' || process.arch !== 'x64' || !onPath('apt-get', env) || !onPath('dpkg-deb', env)) {
    throw new Error(
      'The system glslc is too old for the pinned llama.cpp and no Debian tools are here to fetch a newer one: install the Vulkan SDK (https://vulkan.lunarg.com/sdk/home), set VULKAN_SDK, and retry.',
    );
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const debs = path.join(tmp, 'debs');
  downloadDebianVulkanDebs(debs, env);
  const root = path.join(tmp, 'root');
  fs.mkdirSync(root, { recursive: true });
  for (const deb of fs.readdirSync(debs).filter((f) => f.endsWith('.deb'))) {
    run('dpkg-deb', ['-x', path.join(debs, deb), root]);
  }
  const libDir = path.join(root, 'usr', 'lib', 'x86_64-linux-gnu');
  fs.mkdirSync(path.join(tmp, 'bin'), { recursive: true });
  // The final paths: the wrapper is written for where the folder will be after the rename.
  const finalRoot = path.join(dir, 'root');
  const finalLib = path.join(finalRoot, 'usr', 'lib', 'x86_64-linux-gnu');
  fs.writeFileSync(
    path.join(tmp, 'bin', 'glslc'),
    `#!/bin/sh\n# Debian 13's glslc under Debian 13's loader and libc (it needs glibc 2.38).\nexec "${finalLib}/ld-linux-x86-64.so.2" --library-path "${finalLib}" "${finalRoot}/usr/bin/glslc" "$@"\n`,
    { mode: 0o755 },
  );
  fs.symlinkSync(path.join('root', 'usr', 'include'), path.join(tmp, 'include'));
  fs.symlinkSync(path.join('root', 'usr', 'share'), path.join(tmp, 'share'));
  fs.mkdirSync(path.join(tmp, 'lib'));
  const loader = ['/usr/lib/x86_64-linux-gnu/libvulkan.so.1', '/lib/x86_64-linux-gnu/libvulkan.so.1'].find((p) => fs.existsSync(p));
  if (!loader) throw new Error('libvulkan.so.1 (the Vulkan loader) is not installed: apt-get install libvulkan1, and retry.');
  fs.symlinkSync(loader, path.join(tmp, 'lib', 'libvulkan.so'));
  if (!fs.existsSync(path.join(libDir, 'ld-linux-x86-64.so.2')) || !fs.existsSync(path.join(root, 'usr', 'include', 'vulkan', 'vulkan_core.h'))) {
    throw new Error(`The Debian ${SUITE} packages unpacked without the expected files: delete ${tmp} and retry.`);
  }
  fs.rmSync(debs, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  const version = run(path.join(dir, 'bin', 'glslc'), ['--version']).split('\n')[0];
  fs.writeFileSync(path.join(dir, '.complete'), `${version}\n${new Date().toISOString()}\n`);
  return dir;
}

/**
 * The environment for a llama.cpp Vulkan build here: unchanged when VULKAN_SDK is set or the
 * system's tools are new enough, else with VULKAN_SDK pointing at the Debian 13 folder.
 */
export function ensureVulkanSdkEnv(env = process.env) {
  if (env.VULKAN_SDK || systemVulkanSdkOk(env)) return env;
  return { ...env, VULKAN_SDK: ensureDebianVulkanSdk(env) };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  try {
    const env = ensureVulkanSdkEnv();
    if (env.VULKAN_SDK) process.stdout.write(`${env.VULKAN_SDK}\n`);
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
}
