// npm run build:llama -- --backend cpu [--gpu-targets gfx1151] [--jobs N] [--tarball f.tgz] [--json] [--verbose]
// Gets the pinned llama.cpp source (npm pack of node-llama-cpp) and builds llama-server and
// ggml-rpc-server into the per-user cache; prints progress on stderr and the paths at the end.
// --backend vulkan on a distribution whose glslc is too old for the pinned llama.cpp (Debian 12)
// uses a Vulkan SDK assembled from Debian 13's packages (scripts/vulkan-sdk.mjs) unless
// VULKAN_SDK is set.

import { LLAMA_BACKENDS, LlamaBackend } from '../src/daemon/installer/buildSpec';
import { LlamaInstallError } from '../src/daemon/installer/installError';
import { ensureLlamaBuild } from '../src/daemon/installer/llamaBuild';
import { ensureVulkanSdkEnv } from './vulkan-sdk.mjs';

interface Args {
  backend: LlamaBackend;
  gpuTargets?: string[];
  jobs?: number;
  tarball?: string;
  json: boolean;
  verbose: boolean;
}

function usage(exitCode: number): never {
  process.stderr.write(
    `usage: npm run build:llama -- --backend ${LLAMA_BACKENDS.join('|')} [--gpu-targets gfx1151[,..]] [--jobs N] [--tarball node-llama-cpp.tgz] [--json] [--verbose]\n`,
  );
  process.exit(exitCode);
}

function parseArgs(argv: string[]): Args {
  const out: Args = { backend: 'cpu', json: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(2);
      return v;
    };
    switch (flag) {
      case '--backend': {
        const b = value();
        if (!(LLAMA_BACKENDS as readonly string[]).includes(b)) usage(2);
        out.backend = b as LlamaBackend;
        break;
      }
      case '--gpu-targets':
        out.gpuTargets = value().split(/[,;]/).filter(Boolean);
        break;
      case '--jobs':
      case '-j':
        out.jobs = Number(value());
        if (!(out.jobs >= 1)) usage(2);
        break;
      case '--tarball':
        out.tarball = value();
        break;
      case '--json':
        out.json = true;
        break;
      case '--verbose':
        out.verbose = true;
        break;
      case '--help':
      case '-h':
        usage(0);
      // falls through (usage exits)
      default:
        process.stderr.write(`unknown argument ${a}\n`);
        usage(2);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const ac = new AbortController();
  process.on('SIGINT', () => ac.abort());
  process.on('SIGTERM', () => ac.abort());
  const t0 = Date.now();
  const secs = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const tty = process.stderr.isTTY && !args.verbose;
  let lastLine = '';
  let lastBucket = -1;
  const say = (line: string, transient = false): void => {
    if (line === lastLine) return;
    lastLine = line;
    if (tty && transient) process.stderr.write(`\r\x1b[2K${line}`);
    else process.stderr.write(`${tty ? '\r\x1b[2K' : ''}${line}\n`);
  };
  try {
    const env = args.backend === 'vulkan' ? ensureVulkanSdkEnv(process.env) : process.env;
    if (env.VULKAN_SDK && !process.env.VULKAN_SDK)
      say(`[${secs()}] Using the Vulkan SDK in ${env.VULKAN_SDK} (the system's glslc is too old for this llama.cpp)`);
    const b = await ensureLlamaBuild({
      backend: args.backend,
      env,
      gpuTargets: args.gpuTargets,
      jobs: args.jobs,
      sourceOptions: args.tarball ? { tarballPath: args.tarball } : undefined,
      signal: ac.signal,
      onLog: args.verbose ? (l) => process.stderr.write(`  ${l}\n`) : undefined,
      onProgress: (p) => {
        if (p.phase === 'build' && p.percent !== undefined) {
          // Without a TTY print every 5% only, so CI logs stay short.
          const bucket = Math.floor(p.percent / 5);
          if (!tty && bucket === lastBucket) return;
          lastBucket = bucket;
          say(`[${secs()}] ${p.message}: ${p.percent}%`, true);
        } else {
          say(`[${secs()}] ${p.message}`);
        }
      },
    });
    if (tty) process.stderr.write('\r\x1b[2K');
    const result = { ...b, seconds: Number(((Date.now() - t0) / 1000).toFixed(3)) };
    if (args.json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    } else {
      process.stdout.write(
        [
          `llama.cpp ${b.commit.slice(0, 12)} (${b.backend}${b.gpuTargets.length ? ' ' + b.gpuTargets.join(',') : ''}) ${b.built ? 'built' : 'already built'} in ${secs()}`,
          `  llama-server:    ${b.serverPath}`,
          `  ggml-rpc-server: ${b.rpcServerPath}`,
          `  build dir:       ${b.buildDir}`,
          `  log:             ${b.logPath}`,
          ...(b.version ? [`  ${b.version.split('\n')[0]}`] : []),
        ].join('\n') + '\n',
      );
    }
  } catch (err) {
    if (tty) process.stderr.write('\r\x1b[2K');
    if (err instanceof LlamaInstallError) {
      process.stderr.write(`error: ${err.message}\n`);
      if (err.outputTail && err.code !== 'ABORTED') {
        const tail = err.outputTail
          .split('\n')
          .slice(-15)
          .map((l) => `  | ${l}`)
          .join('\n');
        process.stderr.write(`last output:\n${tail}\n`);
      }
      if (args.json) process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message, logPath: err.logPath } }) + '\n');
      process.exit(err.code === 'ABORTED' ? 130 : 1);
    }
    throw err;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
