import * as fs from 'fs';
import * as path from 'path';
import type { GuardKind, NativeStatus } from './types';

// Finds and loads strata_native.node once per process. Every caller of the addon goes through
// nativeAddon(), which is undefined when the addon is missing, disabled or broken; the reason is
// kept for nativeStatus() so the UI can say why the fallbacks are in use.
//
// Where it is looked for, under the extension root:
//   native/build/Release/strata_native.node            a developer build (npm run build:native)
//   dist/native/<platform>-<arch>/strata_native.node   the prebuilt one a platform VSIX carries
// STRATA_NATIVE=off (or 0/false/no) disables it; STRATA_NATIVE=<file.node> (or
// STRATA_NATIVE_ADDON=<file.node>) loads exactly that file, e.g. the sanitizer build.

/** Bumped together with ABI_VERSION in native/src/addon.cpp. */
export const ADDON_ABI = 1;

/** The raw addon surface (native/src/addon.cpp). Use the wrappers in probe.ts and guard.ts. */
export interface NativeAddon {
  abiVersion: number;
  guardKind: Exclude<GuardKind, 'pidfile'>;
  probeAccelerators(opts: Record<string, unknown>): Promise<string>;
  spawnGuarded(
    file: string,
    args: string[],
    opts: { cwd?: string; env?: string[]; stdio: (number | string | null | { connect: string })[]; newProcessGroup: boolean },
    onExit: (code: number | null, signal: number | null) => void,
  ): number;
  setExitWatchRef(pid: number, ref: boolean): void;
}

let loaded: { status: NativeStatus; addon?: NativeAddon } | undefined;

export function addonCandidates(extensionRoot: string): string[] {
  return [
    path.join(extensionRoot, 'native', 'build', 'Release', 'strata_native.node'),
    path.join(extensionRoot, 'dist', 'native', `${process.platform}-${process.arch}`, 'strata_native.node'),
  ];
}

/**
 * Loads the addon from `extensionRoot` (the folder holding package.json). The first call decides;
 * later calls return the same status, whatever root they pass.
 */
export function loadNative(extensionRoot: string, env: NodeJS.ProcessEnv = process.env): NativeStatus {
  if (!loaded) loaded = tryLoad(extensionRoot, env);
  return loaded.status;
}

export function nativeStatus(): NativeStatus {
  return loaded?.status ?? { loaded: false, reason: 'loadNative(extensionRoot) has not been called' };
}

/** The loaded addon, or undefined (then use the fallbacks). */
export function nativeAddon(): NativeAddon | undefined {
  return loaded?.addon;
}

/** Tests only: forget the decision so the next loadNative() decides again. */
export function _resetNativeForTests(): void {
  loaded = undefined;
}

function tryLoad(root: string, env: NodeJS.ProcessEnv): { status: NativeStatus; addon?: NativeAddon } {
  const setting = (env.STRATA_NATIVE ?? '').trim();
  if (/^(off|0|false|no)$/i.test(setting)) {
    return { status: { loaded: false, reason: `disabled by STRATA_NATIVE=${setting}` } };
  }
  const explicit = setting.endsWith('.node') ? setting : env.STRATA_NATIVE_ADDON?.trim();
  const candidates = explicit ? [path.resolve(explicit)] : addonCandidates(root);
  const failures: string[] = [];
  for (const file of candidates) {
    if (!fs.existsSync(file)) {
      failures.push(`${file}: not found`);
      continue;
    }
    try {
      const mod = { exports: {} as Partial<NativeAddon> };
      // process.dlopen rather than require: bundlers leave it alone and it reports loader errors as is.
      process.dlopen(mod, file);
      const addon = mod.exports;
      if (addon.abiVersion !== ADDON_ABI) {
        failures.push(`${file}: ABI ${String(addon.abiVersion)}, this build expects ${ADDON_ABI} (stale build? run npm run build:native)`);
        continue;
      }
      if (typeof addon.probeAccelerators !== 'function' || typeof addon.spawnGuarded !== 'function') {
        failures.push(`${file}: not a Strata addon`);
        continue;
      }
      const a = addon as NativeAddon;
      return { status: { loaded: true, path: file, guard: a.guardKind }, addon: a };
    } catch (e) {
      failures.push(`${file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const hint = explicit ? '' : ' (no prebuilt binary for this platform, or not built: npm run build:native)';
  return { status: { loaded: false, reason: `native addon not loaded${hint}: ${failures.join('; ')}` } };
}
