import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { listInstalledBuilds, preferredBuildOrder } from '../../daemon/installer/backends';
import { checkExecutable, exeName, findLlamaServer, wellKnownServerPaths } from '../../daemon/installer/findLlamaServer';
import { findOnPath } from '../../daemon/installer/runProcess';

// Where the agent finds rpc-server (and llama-server for placement mode), in the order the
// sidecar uses for llama-server: explicit flag, environment, Strata's managed builds
// (`strata-peer build` makes one), PATH, the usual install places. llama.cpp renamed the binary
// from rpc-server to ggml-rpc-server; both names are looked for.

const RPC_NAMES = ['ggml-rpc-server', 'rpc-server'];

export interface FoundBinary {
  path: string;
  how: 'flag' | 'env' | 'managed' | 'path' | 'well-known' | 'beside';
}

export class BinaryNotFoundError extends Error {
  override readonly name = 'BinaryNotFoundError';
}

export function findRpcServer(opts: { explicit?: string; env?: NodeJS.ProcessEnv } = {}): FoundBinary {
  const env = opts.env ?? process.env;
  const given = opts.explicit ?? env.STRATA_RPC_SERVER;
  if (given) {
    const p = path.resolve(given);
    const problem = checkExecutable(p);
    if (problem)
      throw new BinaryNotFoundError(
        `${p} (from ${opts.explicit ? '--rpc-server' : 'STRATA_RPC_SERVER'}) is ${problem === 'missing' ? 'missing' : problem === 'not-a-file' ? 'not a file' : 'not executable'}: point it at ggml-rpc-server from a llama.cpp build.`,
      );
    return { path: p, how: opts.explicit ? 'flag' : 'env' };
  }
  for (const b of preferredBuildOrder(listInstalledBuilds())) {
    const p = beside(b.serverPath, RPC_NAMES);
    if (p) return { path: p, how: 'managed' };
  }
  for (const n of RPC_NAMES) {
    const p = findOnPath(exeName(n), env);
    if (p) return { path: p, how: 'path' };
  }
  for (const s of wellKnownServerPaths(process.platform, os.homedir(), env)) {
    const p = beside(s, RPC_NAMES);
    if (p) return { path: p, how: 'well-known' };
  }
  throw new BinaryNotFoundError(
    "No ggml-rpc-server found (not in Strata's builds, on PATH or in the usual places): run `strata-peer build --backend <cuda|hip|vulkan|cpu>`, or pass --rpc-server <path>.",
  );
}

/** llama-server for placement mode: flag, environment, beside rpc-server, then the sidecar's search. */
export function findPeerLlamaServer(opts: { explicit?: string; rpcServerPath?: string; env?: NodeJS.ProcessEnv } = {}): FoundBinary {
  const env = opts.env ?? process.env;
  const given = opts.explicit ?? env.STRATA_LLAMA_SERVER;
  if (given) {
    const p = path.resolve(given);
    if (checkExecutable(p)) throw new BinaryNotFoundError(`${p} is not an executable llama-server: fix --llama-server.`);
    return { path: p, how: opts.explicit ? 'flag' : 'env' };
  }
  if (opts.rpcServerPath) {
    const p = beside(opts.rpcServerPath, ['llama-server']);
    if (p) return { path: p, how: 'beside' };
  }
  const managed = preferredBuildOrder(listInstalledBuilds()).map((b) => ({ id: b.id, serverPath: b.serverPath, backend: b.backend }));
  const r = findLlamaServer({ managed, env });
  if (r.found) return { path: r.found.path, how: r.found.kind === 'managed' ? 'managed' : r.found.kind === 'path' ? 'path' : 'well-known' };
  throw new BinaryNotFoundError(
    r.problem?.message.replace(/"Strata: [^"]+"/g, '`strata-peer build`').replace('"strata.server.path"', '--llama-server') ??
      'No llama-server found: pass --llama-server <path>.',
  );
}

function beside(file: string, names: string[]): string | undefined {
  const dir = path.dirname(file);
  for (const n of names) {
    const p = path.join(dir, exeName(n));
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}
