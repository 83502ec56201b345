// Types for prerequisites.mjs (plain JavaScript so that it runs before anything is built or
// transpiled, on whatever Node the user has).
export type Purpose = 'start' | 'test';
export interface Missing { pkg: string; why: string }
export function checkPrerequisites(purpose: Purpose, env?: NodeJS.ProcessEnv): { node?: string; missing: Missing[] };
export function ensurePrerequisites(purpose: Purpose, env?: NodeJS.ProcessEnv): void;
