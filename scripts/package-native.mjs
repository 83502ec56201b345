#!/usr/bin/env node
// Puts the built native addon, and the strata_probe CLI built beside it, where a
// platform-specific VSIX carries them:
//   dist/native/<platform>-<arch>/strata_native.node   (the path src/core/native/loader.ts looks in)
//   dist/native/<platform>-<arch>/strata_probe[.exe]   (probeAccelerators runs it out of process) Run it after the production esbuild (which
// cleans dist/) and before `vsce package --target <target>`.
//
//   node scripts/package-native.mjs                       this machine's target, from native/build
//   node scripts/package-native.mjs --target linux-arm64 --from artifacts/strata_native.node
//   --keep    leave other targets' folders in dist/native (default: a VSIX carries only its own)
//   --out <dir>  instead of dist/native (tests)
//
// Targets are vsce's: win32-x64 win32-arm64 linux-x64 linux-arm64 linux-armhf alpine-x64
// alpine-arm64 darwin-x64 darwin-arm64. A binary for another target cannot be built here; pass
// the one CI built on that platform with --from. The universal VSIX runs no script: it has no
// dist/native and falls back to TypeScript.
import * as fs from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

// vsce target -> Node's process.platform-process.arch, which is what the loader asks for.
const TARGETS = {
  'win32-x64': 'win32-x64',
  'win32-arm64': 'win32-arm64',
  'linux-x64': 'linux-x64',
  'linux-arm64': 'linux-arm64',
  'linux-armhf': 'linux-arm',
  'alpine-x64': 'linux-x64', // musl: a glibc build will not load there (the fallback takes over)
  'alpine-arm64': 'linux-arm64',
  'darwin-x64': 'darwin-x64',
  'darwin-arm64': 'darwin-arm64',
};
const host = `${process.platform}-${process.arch}`;
const target = opt('--target') ?? Object.keys(TARGETS).find((t) => TARGETS[t] === host && !t.startsWith('alpine'));
if (!target || !TARGETS[target]) {
  console.error(`package-native: unknown target ${target ?? '(none for ' + host + ')'}; one of ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}
const folder = TARGETS[target];
const from = path.resolve(opt('--from') ?? path.join(root, 'native', 'build', 'Release', 'strata_native.node'));
if (!fs.existsSync(from)) {
  console.error(`package-native: ${from} does not exist (npm run build:native, or --from <file>)`);
  process.exit(1);
}

// The file must be a shared library of the target's format; a wrong one would only show up
// on a user's machine, as a fallback with a loader error.
const magic = fs.readFileSync(from).subarray(0, 4);
const format =
  magic[0] === 0x7f && magic.toString('latin1', 1, 4) === 'ELF'
    ? 'linux'
    : magic[0] === 0x4d && magic[1] === 0x5a
      ? 'win32'
      : [0xfeedfacf, 0xcffaedfe, 0xcafebabe, 0xbebafeca].includes(magic.readUInt32BE(0))
        ? 'darwin'
        : 'unknown';
if (format !== folder.split('-')[0]) {
  console.error(`package-native: ${from} is a ${format} binary, not one for ${target}`);
  process.exit(1);
}
if (folder === host) {
  // Same platform: load it, as the extension will.
  const mod = { exports: {} };
  process.dlopen(mod, from);
  if (typeof mod.exports.abiVersion !== 'number' || typeof mod.exports.probeAccelerators !== 'function') {
    console.error(`package-native: ${from} loads but is not the Strata addon`);
    process.exit(1);
  }
}

const distNative = path.resolve(opt('--out') ?? path.join(root, 'dist', 'native'));
if (!args.includes('--keep')) fs.rmSync(distNative, { recursive: true, force: true });
const outDir = path.join(distNative, folder);
fs.mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, 'strata_native.node');
fs.copyFileSync(from, out);
console.log(`package-native: ${out} (${target}, ${fs.statSync(out).size} bytes)`);
// The CLI is optional: without it the probe runs inside the extension's process.
const cliName = folder.startsWith('win32') ? 'strata_probe.exe' : 'strata_probe';
const cli = path.join(path.dirname(from), cliName);
if (fs.existsSync(cli)) {
  fs.copyFileSync(cli, path.join(outDir, cliName));
  fs.chmodSync(path.join(outDir, cliName), 0o755);
  console.log(`package-native: ${path.join(outDir, cliName)}`);
} else {
  console.log(`package-native: no ${cliName} beside ${from}; the probe will run in-process`);
}
