import * as fs from 'fs';
import * as path from 'path';
import { LlamaBackend, LlamaBuild, llamaCmakeDefines } from './buildSpec';
import { exeName } from './findLlamaServer';

// The files that say what a build dir holds: the stamp, written last, that vouches for a
// finished build (so finding one costs a stat per binary), the configure mark, and the log.

export interface BinaryFacts {
  rel: string;
  size: number;
  mtimeMs: number;
}

export interface BuildStamp {
  schema: 1;
  commit: string;
  backend: LlamaBackend;
  gpuTargets: string[];
  cmakeDefines: string[];
  server: BinaryFacts;
  rpcServer: BinaryFacts;
  version: string;
  builtAt: string;
  buildSeconds: number;
}

export const BUILD_STAMP_FILE = 'strata-build.json';
export const CONFIGURE_MARK_FILE = 'strata-configure.json';
export const BUILD_LOG_FILE = 'strata-build.log';

export function findBinary(buildDir: string, target: string): string | undefined {
  for (const rel of [path.join('bin', exeName(target)), path.join('bin', 'Release', exeName(target))]) {
    if (fs.existsSync(path.join(buildDir, rel))) return rel;
  }
  return undefined;
}

export function facts(buildDir: string, rel: string): BinaryFacts {
  const st = fs.statSync(path.join(buildDir, rel));
  return { rel, size: st.size, mtimeMs: st.mtimeMs };
}

function sameFacts(buildDir: string, f: BinaryFacts | undefined): boolean {
  if (!f || typeof f.rel !== 'string') return false;
  try {
    const st = fs.statSync(path.join(buildDir, f.rel));
    return st.isFile() && st.size === f.size && st.mtimeMs === f.mtimeMs;
  } catch {
    return false;
  }
}

/**
 * The finished build in buildDir, or undefined. Synchronous and child-free (a stat per binary),
 * so a cached build is found in about a millisecond. Matching size and mtime prove the binaries
 * are the ones that passed the --version check at build time; re-running --version here would
 * cost seconds on GPU builds, where it initialises the driver.
 */
export function readCompletedBuild(buildDir: string, commit: string, backend: LlamaBackend, gpuTargets: readonly string[]): LlamaBuild | undefined {
  let stamp: BuildStamp;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(buildDir, BUILD_STAMP_FILE), 'utf8')) as BuildStamp;
  } catch {
    return undefined;
  }
  if (
    stamp.schema !== 1 ||
    stamp.commit !== commit ||
    stamp.backend !== backend ||
    JSON.stringify(stamp.cmakeDefines) !== JSON.stringify(llamaCmakeDefines(backend, gpuTargets)) ||
    !sameFacts(buildDir, stamp.server) ||
    !sameFacts(buildDir, stamp.rpcServer)
  ) {
    return undefined;
  }
  const serverPath = path.join(buildDir, stamp.server.rel);
  return {
    binDir: path.dirname(serverPath),
    serverPath,
    rpcServerPath: path.join(buildDir, stamp.rpcServer.rel),
    commit,
    backend,
    buildDir,
    gpuTargets: [...gpuTargets],
    logPath: path.join(buildDir, BUILD_LOG_FILE),
    version: stamp.version,
    built: false,
  };
}
