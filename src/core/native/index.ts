// The native addon and its TypeScript fallbacks: accelerator probe and child-lifetime guard.
// No `vscode` import below here. Call loadNative(extensionRoot) once at startup; everything else
// works whether or not the addon loaded (see nativeStatus() for why it did not).
export { loadNative, nativeStatus, addonCandidates, ADDON_ABI } from './loader';
export { probeAccelerators, readSystemMemory, type ProbeOptions } from './probe';
export {
  spawnGuarded,
  reapOrphans,
  resolveExecutable,
  defaultPidFileDir,
  type SpawnGuardedOptions,
  type GuardedChild,
  type ChildExit,
  type StdioTarget,
} from './guard';
export { isPidAlive as isAlive } from '../daemonClient/processInfo';
export * from './types';
