// Types for vulkan-sdk.mjs (plain JavaScript so that scripts/test-all.mjs can run it before anything is built).
export function systemVulkanSdkOk(env?: NodeJS.ProcessEnv): boolean;
export function ensureDebianVulkanSdk(env?: NodeJS.ProcessEnv): string;
export function ensureVulkanSdkEnv(env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
export function downloadDebianVulkanDebs(dest: string, env?: NodeJS.ProcessEnv, extra?: string[]): string[];
