import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { ensureLlamaBuild } from '../../src/sidecar/installer/llamaBuild';

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

async function resolveBinaries(): Promise<LlamaBinaries> {
  const dir = process.env.STRATA_LLAMA_BIN_DIR;
  if (dir) return fromDir(path.resolve(dir));
  let lastTenth = -1;
  const b = await ensureLlamaBuild({
    backend: 'cpu',
    onProgress: (p) => {
      // A cold build takes minutes; say so rather than look hung.
      if (p.phase === 'build' && p.percent !== undefined) {
        const tenth = Math.floor(p.percent / 10);
        if (tenth === lastTenth) return;
        lastTenth = tenth;
      }
      process.stderr.write(`[llama.cpp] ${p.message}${p.percent !== undefined ? ` ${p.percent}%` : ''}\n`);
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
