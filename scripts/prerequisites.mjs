#!/usr/bin/env node
// What `npm start` and `npm test` need from the machine, checked before they build anything: the
// Node version and the OS packages (Debian/Ubuntu names). A missing package is installed with
// apt-get when we are root (one line says what and why); otherwise the command stops at once with
// one message naming every missing package and the command that installs them, instead of a stack
// trace from deep inside a suite half an hour later. The README's "Prerequisites" lists the same.
//
// Usage: node scripts/prerequisites.mjs [start|test]   (scripts/test-all.mjs and scripts/start.ts
// call ensurePrerequisites() first). Environment:
//   STRATA_PREREQUISITES_EXTRA  more package names to require (space-separated), checked with dpkg
//                               like the others: the tests use names that do not exist to see the
//                               "missing" path for real
//   STRATA_SKIP_PREREQUISITES=1 skip the check (a machine without dpkg that has the tools anyway)
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * Debian package, what it is for, and how to see it without dpkg (a command on PATH or a file):
 * a tool installed some other way counts as present.
 */
const PACKAGES = [
  { pkg: 'cmake', bin: 'cmake', why: 'builds llama.cpp', for: ['start', 'test'] },
  { pkg: 'g++', bin: 'g++', why: "compiles llama.cpp, the native addon and code-server's modules", for: ['start', 'test'] },
  { pkg: 'make', bin: 'make', why: "node-gyp builds code-server's native modules with it", for: ['start', 'test'] },
  { pkg: 'python3', bin: 'python3', why: 'node-gyp runs on it', for: ['start', 'test'] },
  { pkg: 'git', bin: 'git', why: 'checks out the pinned llama.cpp source', for: ['start', 'test'] },
  { pkg: 'libkrb5-dev', bin: 'krb5-config', why: "code-server's kerberos module compiles against it", for: ['start', 'test'] },
  { pkg: 'ripgrep', bin: 'rg', why: "code-server's search (its npm package would download rg from GitHub)", for: ['start', 'test'] },
  { pkg: 'xz-utils', bin: 'xz', why: "tar -J: the benches' llama.cpp source bundles and the model data (scripts/model)", for: ['test'] },
  { pkg: 'unzip', bin: 'unzip', why: "in CI's image since the first .ci/run; no suite calls it today", for: ['test'] },
  {
    pkg: 'chromium',
    files: [process.env.STRATA_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'],
    why: 'the extension-host and browser E2E tests drive it',
    for: ['test'],
  },
  { pkg: 'libvulkan1', why: 'the Vulkan probe tests load the real Vulkan loader', for: ['test'] },
  // The llama.cpp Vulkan build (scripts/test-all.mjs builds it before the suites). Where these are
  // older than the pinned llama.cpp needs (Debian 12), scripts/vulkan-sdk.mjs adds Debian 13's.
  { pkg: 'glslc', bin: 'glslc', why: "compiles llama.cpp's Vulkan shaders (the Vulkan build and its tests)", for: ['test'] },
  { pkg: 'libvulkan-dev', files: ['/usr/include/vulkan/vulkan.h'], why: "the Vulkan headers and link library of llama.cpp's Vulkan build", for: ['test'] },
  {
    pkg: 'spirv-headers',
    files: ['/usr/share/cmake/SPIRV-Headers/SPIRV-HeadersConfig.cmake', '/usr/include/spirv/unified1/spirv.hpp'],
    why: "llama.cpp's Vulkan build looks them up with CMake (find_package(SPIRV-Headers))",
    for: ['test'],
  },
  {
    pkg: 'mesa-vulkan-drivers',
    files: ['/usr/share/vulkan/icd.d/lvp_icd.x86_64.json', '/usr/share/vulkan/icd.d/lvp_icd.aarch64.json'],
    why: 'Mesa lavapipe, the GPU-less Vulkan device of the probe tests',
    for: ['test'],
  },
  { pkg: 'iproute2', bin: 'ip', why: 'the cluster tests put each peer in its own network namespace', for: ['test'] },
  { pkg: 'nftables', bin: 'nft', why: 'the cluster tests drop packets on a peer link with it', for: ['test'] },
];

const MIN_NODE = [20, 19, 0];

function onPath(bin, env) {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, bin), fs.constants.X_OK);
      return true;
    } catch {
      /* keep looking */
    }
  }
  return false;
}

/** Packages dpkg reports installed, of those asked; undefined where there is no dpkg. */
function dpkgInstalled(pkgs, env) {
  if (!pkgs.length || !onPath('dpkg-query', env)) return undefined;
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...pkgs], { encoding: 'utf8', env });
  const ok = new Set();
  for (const line of (r.stdout ?? '').split('\n')) {
    const [name, status] = line.split(' ');
    if (status === 'installed') ok.add(name.replace(/:.*$/, ''));
  }
  return ok;
}

function nodeProblem(purpose, env) {
  const v = process.versions.node.split('.').map(Number);
  const tooOld = v[0] < MIN_NODE[0] || (v[0] === MIN_NODE[0] && v[1] < MIN_NODE[1]);
  if (tooOld) return `Node.js ${MIN_NODE.join('.')} or newer (this is ${process.versions.node})`;
  // code-server 4.100 (the tests' VS Code, and npm start's without a desktop `code`) runs on Node 20 only.
  const needsCodeServer = purpose === 'test' || !onPath('code', env) || env.STRATA_START_CODE_SERVER;
  if (v[0] !== 20 && needsCodeServer && !env.STRATA_CODE_SERVER_NODE) {
    return `Node.js 20 for code-server 4.100 (this is ${process.versions.node}; or set STRATA_CODE_SERVER_NODE to a Node 20 binary)`;
  }
  return undefined;
}

/** What is missing for `purpose` ('start' or 'test'): { node?: string, missing: [{pkg, why}] }. */
export function checkPrerequisites(purpose, env = process.env) {
  const wanted = PACKAGES.filter((p) => p.for.includes(purpose));
  for (const pkg of (env.STRATA_PREREQUISITES_EXTRA ?? '').split(/\s+/).filter(Boolean)) {
    wanted.push({ pkg, why: 'named in STRATA_PREREQUISITES_EXTRA' });
  }
  const seen = (p) => (p.bin && onPath(p.bin, env)) || (p.files ?? []).some((f) => f && fs.existsSync(f));
  const unseen = wanted.filter((p) => !seen(p));
  const installed = dpkgInstalled(
    unseen.map((p) => p.pkg),
    env,
  );
  const missing = unseen.filter((p) => !installed?.has(p.pkg)).map(({ pkg, why }) => ({ pkg, why }));
  return { node: nodeProblem(purpose, env), missing };
}

function isRoot() {
  return process.getuid?.() === 0;
}

/** apt-get update + install as root; returns the error line apt printed, or undefined on success. */
function aptInstall(pkgs, env) {
  const log = path.join(os.tmpdir(), `strata-apt-${process.pid}.log`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  let out = '';
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', ...pkgs],
  ]) {
    const r = spawnSync('apt-get', args, { encoding: 'utf8', env: aptEnv, timeout: 20 * 60_000 });
    out += `$ apt-get ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (r.status !== 0 && args[0] === 'install') {
      fs.writeFileSync(log, out);
      const err = `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n').find((l) => /^E: /.test(l)) ?? `apt-get exited with ${r.status ?? r.signal}`;
      return `${err} (full output: ${log})`;
    }
  }
  return undefined;
}

function stopMessage(command, node, missing, aptError) {
  const lines = [`\n\`${command}\` cannot run on this machine yet; it needs:`];
  if (node) lines.push(`  - ${node}`);
  for (const m of missing) lines.push(`  - ${m.pkg}: ${m.why}`);
  if (aptError) lines.push(`apt-get could not install ${missing.length === 1 ? 'it' : 'them'}: ${aptError}`);
  if (missing.length) {
    const names = missing.map((m) => m.pkg).join(' ');
    const sudo = isRoot() ? '' : 'sudo ';
    lines.push(`Install ${missing.length === 1 ? 'it' : 'them'} and run \`${command}\` again:`);
    lines.push(`  ${sudo}apt-get update && ${sudo}apt-get install -y ${names}`);
    lines.push(`(Debian/Ubuntu names; elsewhere install the equivalents, or set STRATA_SKIP_PREREQUISITES=1 if they are there under other names.)`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Checks, installs what it can (root with apt-get), and otherwise prints one message and exits
 * with status 1. `purpose` is 'start' or 'test'.
 */
export function ensurePrerequisites(purpose, env = process.env) {
  const command = purpose === 'start' ? 'npm start' : 'npm test';
  if (env.STRATA_SKIP_PREREQUISITES === '1') {
    process.stdout.write('[strata] STRATA_SKIP_PREREQUISITES=1: not checking Node and the OS packages\n');
    return;
  }
  let { node, missing } = checkPrerequisites(purpose, env);
  let aptError;
  if (missing.length && isRoot() && onPath('apt-get', env)) {
    const names = missing.map((m) => m.pkg).join(' ');
    process.stdout.write(`[strata] installing ${names} with apt-get, which ${command} needs: ${missing.map((m) => `${m.pkg} (${m.why})`).join(', ')}\n`);
    aptError = aptInstall(
      missing.map((m) => m.pkg),
      env,
    );
    ({ missing } = checkPrerequisites(purpose, env));
  }
  if (!node && !missing.length) return;
  process.stderr.write(stopMessage(command, node, missing, aptError));
  process.exit(1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const purpose = process.argv[2] ?? 'test';
  if (purpose !== 'start' && purpose !== 'test') {
    process.stderr.write(`Unknown purpose ${purpose}: use "start" or "test".\n`);
    process.exit(2);
  }
  ensurePrerequisites(purpose);
  process.stdout.write(`[strata] prerequisites of npm ${purpose} are in place\n`);
}
