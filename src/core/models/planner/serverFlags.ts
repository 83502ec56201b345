// llama-server's flag vocabulary changes between releases (`-fa` became `-fa on|off|auto`,
// `--no-mmap` became `--load-mode none`, `--fit`, `--cache-ram` and `--kv-unified` are recent).
// A plan must speak the dialect of the binary that will run it, so the flags are read from that
// binary's `--help`, once per binary.

import { execFile } from 'child_process';
import * as fs from 'fs';

export interface ServerFlags {
  /** `-fa on|off|auto` (true) or a bare `-fa` switch (false). */
  flashAttnValue: boolean;
  /** `--load-mode none` disables mmap (new); else `--no-mmap`. */
  loadMode: boolean;
  noMmap: boolean;
  kvUnified: boolean;
  cacheRam: boolean;
  fit: boolean;
  /** `--no-repack` exists (CPU weight repacking). */
  noRepack: boolean;
  cacheReuse: boolean;
}

/** The pinned llama.cpp (de3ff81): what Strata builds and tests against. */
export const CURRENT_FLAGS: ServerFlags = {
  flashAttnValue: true,
  loadMode: true,
  noMmap: false,
  kvUnified: true,
  cacheRam: true,
  fit: true,
  noRepack: true,
  cacheReuse: true,
};

export function parseServerHelp(help: string): ServerFlags {
  const has = (re: RegExp) => re.test(help);
  return {
    flashAttnValue: has(/--flash-attn\s+\[?on\|off/),
    loadMode: has(/--load-mode\b/),
    noMmap: has(/--no-mmap\b/),
    kvUnified: has(/--kv-unified\b/),
    cacheRam: has(/--cache-ram\b/),
    fit: has(/(^|\s)--fit\s/m),
    noRepack: has(/--no-repack\b/),
    cacheReuse: has(/--cache-reuse\b/),
  };
}

const cache = new Map<string, { key: string; flags: ServerFlags }>();

/** Flags of the binary at `bin` (cached by size and mtime); the current vocabulary if it cannot be asked. */
export async function serverFlagsOf(bin: string, timeoutMs = 15_000): Promise<ServerFlags> {
  let key: string;
  try {
    const st = fs.statSync(bin);
    key = `${st.size}:${st.mtimeMs}`;
  } catch {
    return CURRENT_FLAGS;
  }
  const hit = cache.get(bin);
  if (hit?.key === key) return hit.flags;
  const env = { ...process.env };
  delete env.ELECTRON_RUN_AS_NODE;
  const text = await new Promise<string>((resolve) => {
    execFile(bin, ['--help'], { timeout: timeoutMs, maxBuffer: 8 << 20, env, windowsHide: true }, (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`));
  });
  const flags = /--ctx-size/.test(text) ? parseServerHelp(text) : CURRENT_FLAGS;
  cache.set(bin, { key, flags });
  return flags;
}
