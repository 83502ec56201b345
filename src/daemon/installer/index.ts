// The installer as the VS Code window sees it: finding and inspecting a llama-server, the builds
// installed in the cache and their benchmarks, downloading a release, and building from source.
// src/vscode imports the installer through this file only, so the modules behind it can move.

export { benchmarkBackends, defaultBuildForModel, formatBenchTable, listInstalledBuilds, preferredBuildOrder, recommendedBackends } from './backends';
export type { ModelBenchRecord } from './backends';
export { LLAMA_BACKENDS } from './buildSpec';
export type { LlamaBackend, LlamaBuild } from './buildSpec';
export { installLlamaRelease } from './downloadLlamaServer';
export { assetsForPlatform, DEFAULT_RELEASE_API, fetchRelease } from './llamaRelease';
export type { InstalledRelease } from './downloadLlamaServer';
export { checkExecutable, describeDevices, findLlamaServer, inspectLlamaServer } from './findLlamaServer';
export type { FindResult, LlamaDevice, LlamaServerInfo, ServerCandidate } from './findLlamaServer';
export { ensureLlamaBuild } from './llamaBuild';
