import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { ensureLlamaBuild } from '../../src/daemon/installer/llamaBuild';
import { ensureVulkanSdkEnv } from '../../scripts/vulkan-sdk.mjs';

// The llama-server and ggml-rpc-server every test runs against. Default: the CPU build from the
// pinned llama.cpp source (built once into the per-user cache, ~4 min, then found in ~1 ms).
// STRATA_LLAMA_BIN_DIR=<dir with llama-server> skips that, for quick iteration on a local build.

export interface LlamaBinaries {
  serverPath: string;
  rpcServerPath: string;
  binDir: string;
  /** Full commit for the cached build; the short one llama-server reports for STRATA_LLAMA_BIN_DIR. */
  commit: string;
}

let pending: Promise<LlamaBinaries> | undefined;

export function getLlamaBinaries(): Promise<LlamaBinaries> {
  // One lookup per test process; a failure is not cached so a later test can report it too.
  pending ??= resolveBinaries().catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

let pendingVulkan: Promise<LlamaBinaries> | undefined;

/**
 * The Vulkan build from the same pinned source (scripts/test-all.mjs builds it before the suites;
 * a cold build here takes a long while on 2 cores). On Debian 12 it uses the Vulkan SDK that
 * scripts/vulkan-sdk.mjs assembles, as `npm run build:llama -- --backend vulkan` does.
 */
export function getVulkanLlamaBinaries(): Promise<LlamaBinaries> {
  pendingVulkan ??= buildBinaries('vulkan', ensureVulkanSdkEnv(process.env)).catch((err: unknown) => {
    pendingVulkan = undefined;
    throw err;
  });
  return pendingVulkan;
}

/**
 * The environment that makes llama.cpp's Vulkan backend use a device here: none is needed where
 * it finds a GPU; on a GPU-less machine it must be told to take Mesa's lavapipe, the software
 * device it skips by default (GGML_VK_VISIBLE_DEVICES=0; lavapipe is then the only device).
 */
export async function vulkanRunEnv(serverPath: string): Promise<Record<string, string>> {
  if (process.env.GGML_VK_VISIBLE_DEVICES) return { GGML_VK_VISIBLE_DEVICES: process.env.GGML_VK_VISIBLE_DEVICES };
  const { stdout, stderr } = await promisify(execFile)(serverPath, ['--list-devices'], { timeout: 60_000 });
  return /^\s*Vulkan\d+:/m.test(`${stdout}\n${stderr}`) ? {} : { GGML_VK_VISIBLE_DEVICES: '0' };
}

async function resolveBinaries(): Promise<LlamaBinaries> {
  const dir = process.env.STRATA_LLAMA_BIN_DIR;
  if (dir) return fromDir(path.resolve(dir));
  return buildBinaries('cpu', process.env);
}

async function buildBinaries(backend: 'cpu' | 'vulkan', env: NodeJS.ProcessEnv): Promise<LlamaBinaries> {
  let lastTenth = -1;
  const b = await ensureLlamaBuild({
    backend,
    env,
    onProgress: (p) => {
      // A cold build takes minutes; say so rather than look hung.
      if (p.phase === 'build' && p.percent !== undefined) {
        const tenth = Math.floor(p.percent / 10);
        if (tenth === lastTenth) return;
        lastTenth = tenth;
      }
      process.stderr.write(`[llama.cpp ${backend}] ${p.message}${p.percent !== undefined ? ` ${p.percent}%` : ''}\n`);
    },
  });
  return { serverPath: b.serverPath, rpcServerPath: b.rpcServerPath, binDir: b.binDir, commit: b.commit };
}

async function fromDir(binDir: string): Promise<LlamaBinaries> {
  const exe = process.platform === 'win32' ? '.exe' : '';
  const serverPath = path.join(binDir, `llama-server${exe}`);
  // Older llama.cpp trees name the binary rpc-server.
  const rpcServerPath = [`ggml-rpc-server${exe}`, `rpc-server${exe}`].map((n) => path.join(binDir, n)).find((p) => fs.existsSync(p));
  if (!fs.existsSync(serverPath) || !rpcServerPath) {
    throw new Error(`STRATA_LLAMA_BIN_DIR=${binDir} lacks llama-server or ggml-rpc-server: point it at a llama.cpp bin directory or unset it.`);
  }
  const { stdout, stderr } = await promisify(execFile)(serverPath, ['--version'], { timeout: 30_000 });
  const out = `${stdout}\n${stderr}`;
  // "version: 0.5.0-dev (build 1, commit de3ff81)" now; "version: 1 (de3ff81)" in older trees.
  const commit = /commit ([0-9a-f]{7,40})/.exec(out)?.[1] ?? /version: \S+ \(([0-9a-f]{7,40})\)/.exec(out)?.[1] ?? 'unknown';
  return { serverPath, rpcServerPath, binDir, commit };
}
