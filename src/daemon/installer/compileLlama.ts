import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as os from 'os';
import * as path from 'path';
import { buildFailureMessage, hasKnownCause } from './buildFailure';
import { LlamaBackend, LlamaBuild, llamaBuildArgs, llamaCmakeDefines, llamaConfigureArgs, LLAMA_TARGETS } from './buildSpec';
import { BUILD_LOG_FILE, BUILD_STAMP_FILE, BuildStamp, CONFIGURE_MARK_FILE, facts, findBinary } from './buildStamp';
import { toolchainEnv } from './buildToolchain';
import { writeFileAtomic } from './cacheLock';
import { abortedError, LlamaInstallError, toolMissingMessage } from './installError';
import { InstallProgress, LlamaSource, shortCommit } from './llamaSource';
import { findOnPath, runProcess } from './runProcess';

// One compile of llama.cpp in a build dir its caller has locked: configure (skipped when the
// cache came from the same arguments), build with progress, run the fresh binaries once, and
// write the stamp last.

/** Percent done from one build output line: Makefiles' "[ 45%]" or Ninja's "[12/345]". */
export function parseBuildPercent(line: string): number | undefined {
  const make = /^\s*\[\s*(\d{1,3})%\]/.exec(line);
  if (make) return Math.min(100, Number(make[1]));
  const ninja = /^\s*\[(\d+)\/(\d+)\]/.exec(line);
  if (ninja && Number(ninja[2]) > 0) return Math.min(100, Math.floor((100 * Number(ninja[1])) / Number(ninja[2])));
  return undefined;
}

export interface CompileJob {
  backend: LlamaBackend;
  gpuTargets: string[];
  /** "cpu", "hip gfx1151": how messages name this build. */
  label: string;
  source: LlamaSource;
  buildDir: string;
  env: NodeJS.ProcessEnv;
  /** Variables the toolchain check found cmake needs (requireBuildTools). */
  extraEnv: Record<string, string>;
  /** Cancels the build; also fires when the build dir's lock is lost. */
  signal: AbortSignal;
  /** The caller can cancel: worth a process group to kill (see RunOptions.ownGroup). */
  userSignal: boolean;
  jobs?: number;
  verify?: boolean;
  onLog?: (line: string) => void;
  progress: (p: InstallProgress) => void;
}

export async function compileLlama(a: CompileJob): Promise<LlamaBuild> {
  const started = Date.now();
  const { buildDir, backend, gpuTargets, label, progress } = a;
  const logPath = path.join(buildDir, BUILD_LOG_FILE);
  await fsp.mkdir(buildDir, { recursive: true });
  // A stale stamp must not vouch for binaries this run is about to replace.
  await fsp.rm(path.join(buildDir, BUILD_STAMP_FILE), { force: true });
  const log = fs.createWriteStream(logPath, { flags: 'w' });
  const logLine = (s: string): void => {
    log.write(s + '\n');
  };
  const env = { ...a.env, ...a.extraEnv };
  const defines = llamaCmakeDefines(backend, gpuTargets);
  const configureArgs = llamaConfigureArgs(a.source.srcDir, buildDir, defines);
  const jobs = Math.max(1, Math.floor(a.jobs ?? os.availableParallelism?.() ?? os.cpus().length));
  try {
    logLine(`# Strata llama.cpp build ${new Date().toISOString()} commit ${a.source.commit} backend ${label} jobs ${jobs}`);
    if (Object.keys(a.extraEnv).length) logLine(`# env ${JSON.stringify(a.extraEnv)}`);

    // Skip configure when the cache came from these exact args, so a resumed build continues
    // rather than regenerating everything. Different args (or a moved source dir) get a fresh cache, since cmake keeps stale
    // options and refuses a cache made for another source dir.
    const mark = JSON.stringify({ args: configureArgs, env: a.extraEnv, toolchain: toolchainEnv(env) });
    const cacheFile = path.join(buildDir, 'CMakeCache.txt');
    const prevMark = await fsp.readFile(path.join(buildDir, CONFIGURE_MARK_FILE), 'utf8').catch(() => undefined);
    const reconfigured = !fs.existsSync(cacheFile) || prevMark !== mark;
    if (reconfigured) {
      await fsp.rm(cacheFile, { force: true });
      await fsp.rm(path.join(buildDir, CONFIGURE_MARK_FILE), { force: true });
      progress({ phase: 'configure', message: `Configuring llama.cpp (${label})` });
      logLine(`# cmake ${configureArgs.join(' ')}`);
      const r = await runCmake(configureArgs, env, a, log);
      if (r.aborted) throw abortedError('The llama.cpp build');
      if (r.code !== 0) {
        // The cause can sit far above the tail (cmake goes on to print its summary), and a
        // configure log is small: search all of it.
        const whole = await fsp.readFile(logPath, 'utf8').catch(() => r.tail);
        const firstErr = whole.split('\n').find((l) => l.startsWith('CMake Error'));
        const text = firstErr ? `${firstErr}\n${whole}` : r.tail;
        throw new LlamaInstallError('CONFIGURE_FAILED', buildFailureMessage('configure', label, r.code, text, logPath), logPath, r.tail);
      }
      await writeFileAtomic(path.join(buildDir, CONFIGURE_MARK_FILE), mark);
    } else {
      logLine('# configure skipped: CMakeCache.txt matches');
    }

    progress({ phase: 'build', message: `Compiling llama.cpp (${label}) with ${jobs} jobs`, percent: 0 });
    const buildArgs = llamaBuildArgs(buildDir, jobs);
    logLine(`# cmake ${buildArgs.join(' ')}`);
    let last = -1;
    const r = await runCmake(buildArgs, env, a, log, (line) => {
      const p = parseBuildPercent(line);
      // Several targets share one counter that never goes back; keep it monotonic anyway.
      if (p !== undefined && p > last) {
        last = p;
        progress({ phase: 'build', message: `Compiling llama.cpp (${label})`, percent: p });
      }
    });
    if (r.aborted) throw abortedError('The llama.cpp build');
    if (r.code !== 0) {
      const resumedIn = reconfigured ? undefined : buildDir;
      // With parallel jobs the cause (a glslc warning, say) can scroll out of the tail while the
      // other jobs finish: look for a known one in the whole log.
      const whole = await fsp.readFile(logPath, 'utf8').catch(() => '');
      const text = hasKnownCause(whole) && !hasKnownCause(r.tail) ? `${whole}\n${r.tail}` : r.tail;
      throw new LlamaInstallError('BUILD_FAILED', buildFailureMessage('compile', label, r.code, text, logPath, resumedIn), logPath, r.tail);
    }

    const serverRel = findBinary(buildDir, LLAMA_TARGETS.server);
    const rpcRel = findBinary(buildDir, LLAMA_TARGETS.rpcServer);
    if (!serverRel || !rpcRel) {
      throw new LlamaInstallError(
        'BUILD_FAILED',
        `The llama.cpp build finished but ${!serverRel ? LLAMA_TARGETS.server : LLAMA_TARGETS.rpcServer} is not in ${path.join(buildDir, 'bin')}: read ${logPath}, then delete ${buildDir} and retry.`,
        logPath,
      );
    }
    const serverPath = path.join(buildDir, serverRel);
    const rpcServerPath = path.join(buildDir, rpcRel);

    let version = '';
    if (a.verify !== false) {
      progress({ phase: 'verify', message: 'Checking that the new binaries run' });
      version = await verifyBinary(serverPath, ['--version'], a, log, logPath);
      // build-info takes the commit from git at configure time; "unknown" when git was missing.
      const reported = /commit ([0-9a-f]{7,40})\b/.exec(version)?.[1];
      if (reported && !a.source.commit.startsWith(reported)) {
        throw new LlamaInstallError(
          'VERIFY_FAILED',
          `The built llama-server reports commit ${reported}, not ${shortCommit(a.source.commit)}: the source tree ${a.source.srcDir} was changed, so delete it and ${buildDir} and retry.`,
          logPath,
        );
      }
      // rpc-server has no --version; --help exits 0 after printing usage, before touching devices.
      await verifyBinary(rpcServerPath, ['--help'], a, log, logPath);
    }

    const stamp: BuildStamp = {
      schema: 1,
      commit: a.source.commit,
      backend,
      gpuTargets,
      cmakeDefines: defines,
      server: facts(buildDir, serverRel),
      rpcServer: facts(buildDir, rpcRel),
      version,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
    await writeFileAtomic(path.join(buildDir, BUILD_STAMP_FILE), JSON.stringify(stamp, null, 2) + '\n');
    logLine(`# done in ${stamp.buildSeconds} s`);
    progress({ phase: 'done', message: `llama.cpp (${label}) is ready in ${path.dirname(serverPath)}`, percent: 100 });
    return {
      binDir: path.dirname(serverPath),
      serverPath,
      rpcServerPath,
      commit: a.source.commit,
      backend,
      buildDir,
      gpuTargets,
      logPath,
      version,
      built: true,
    };
  } finally {
    await new Promise<void>((resolve) => log.end(resolve));
  }
}

async function runCmake(args: string[], env: NodeJS.ProcessEnv, a: CompileJob, log: fs.WriteStream, onLine?: (l: string) => void) {
  try {
    return await runProcess(findOnPath('cmake', env) ?? 'cmake', args, {
      env,
      // cwd inside the build dir marks every process of this build (see killLeftoverBuild).
      cwd: a.buildDir,
      signal: a.signal,
      ownGroup: a.userSignal,
      log,
      onLine: (line) => {
        onLine?.(line);
        a.onLog?.(line);
      },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LlamaInstallError('TOOL_MISSING', toolMissingMessage('cmake'));
    throw err;
  }
}

async function verifyBinary(bin: string, args: string[], a: CompileJob, log: fs.WriteStream, logPath: string): Promise<string> {
  log.write(`# ${bin} ${args.join(' ')}\n`);
  const r = await runProcess(bin, args, { env: a.env, signal: a.signal, log, timeoutMs: 60_000 });
  if (r.aborted) throw abortedError('The llama.cpp build');
  if (r.code !== 0) {
    throw new LlamaInstallError(
      'VERIFY_FAILED',
      `The freshly built ${path.basename(bin)} does not run (${args.join(' ')} exited with ${r.code ?? r.signal}${r.timedOut ? ', timed out' : ''}): read ${logPath}; for GPU backends check that the driver is installed.`,
      logPath,
      r.tail,
    );
  }
  // llama-server prints its version to stderr, after a log line or two.
  return (
    r.tail
      .split('\n')
      .filter((l) => /^version:|^built with/.test(l.trim()))
      .join('\n') || r.tail.trim().split('\n').slice(-2).join('\n')
  );
}
