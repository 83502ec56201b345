import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { nativeAddon, nativeStatus } from './loader';
import { readAmdgpuSysfs } from './sysfs';
import { ALL_BACKENDS, type AcceleratorDevice, type AcceleratorProbe, type Backend, type BackendStatus, type SystemMemory } from './types';

export interface ProbeOptions {
  /** Library overrides (default: the platform's search; env STRATA_CUDA_LIB etc. when unset). */
  cudaLib?: string;
  nvmlLib?: string;
  hipLib?: string;
  vulkanLib?: string;
  /** sysfs root for amdgpu (default /sys; env STRATA_SYSFS_ROOT). */
  sysfsRoot?: string;
  /** Also list Vulkan's CPU (software) devices, which llama.cpp skips (default false; env STRATA_VULKAN_CPU=1). */
  vulkanCpu?: boolean;
  /** Only these sources (default: all). */
  backends?: Backend[];
  /**
   * Run the probe in a short-lived strata_probe process (the CLI shipped next to the addon)
   * instead of in this one. Default: true when that CLI exists. Initialising CUDA, HIP or a
   * Vulkan driver leaves threads, a GPU context (HIP's costs memory on the device) and loaded
   * libraries in the process for good, which a long-lived sidecar should not carry; a crashing
   * driver takes down only the probe process; a hanging one is killed at timeoutMs.
   */
  isolate?: boolean;
  /**
   * Give up after this long and answer from the fallback (default 20 s). In-process, a driver
   * that hangs keeps one libuv worker thread busy until it returns; isolated, it is killed.
   */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * What accelerators this machine has and how much memory each can take. Never rejects: without
 * the addon (or when its probe fails) it answers from /proc, sysfs and `os`, with GPU runtimes
 * marked 'skipped' and the reason attached.
 */
export async function probeAccelerators(opts: ProbeOptions = {}): Promise<AcceleratorProbe> {
  const env = opts.env ?? process.env;
  const args = {
    cudaLib: opts.cudaLib ?? env.STRATA_CUDA_LIB,
    nvmlLib: opts.nvmlLib ?? env.STRATA_NVML_LIB,
    hipLib: opts.hipLib ?? env.STRATA_HIP_LIB,
    vulkanLib: opts.vulkanLib ?? env.STRATA_VULKAN_LIB,
    sysfsRoot: opts.sysfsRoot ?? env.STRATA_SYSFS_ROOT,
    vulkanCpu: opts.vulkanCpu ?? env.STRATA_VULKAN_CPU === '1',
    backends: opts.backends,
  };
  const addon = nativeAddon();
  const timeoutMs = opts.timeoutMs ?? 20000;
  let nativeError: string | undefined;
  const cli = addon && opts.isolate !== false ? probeCli() : undefined;
  let inProcess = !!addon && !cli;
  if (cli) {
    try {
      const json = await runProbeCli(cli, args, timeoutMs, env);
      return { ...(JSON.parse(json) as Omit<AcceleratorProbe, 'via'>), via: 'native', isolated: true };
    } catch (e) {
      nativeError = (e as Error).message;
      // Could not even start it (a VSIX that lost the executable bit, say): no driver was
      // involved, so asking in-process is as safe as ever. A crash or hang is not retried here.
      inProcess = (e as NodeJS.ErrnoException).code === 'EACCES' || (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }
  if (inProcess && addon) {
    nativeError = undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const json = await Promise.race([
        addon.probeAccelerators(Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined && v !== '' && v !== false))),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`native probe did not answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      const parsed = JSON.parse(json) as Omit<AcceleratorProbe, 'via'>;
      return { ...parsed, via: 'native', isolated: false };
    } catch (e) {
      nativeError = (e as Error).message;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
  const probe = fallbackProbe(args.sysfsRoot || '/sys', args.backends, nativeError ?? nativeStatus().reason ?? 'native addon not loaded');
  if (nativeError) probe.nativeError = nativeError;
  return probe;
}

/** The strata_probe CLI next to the loaded addon, if it was shipped/built there. */
export function probeCli(): string | undefined {
  const addonFile = nativeStatus().path;
  if (!addonFile) return undefined;
  const cli = path.join(path.dirname(addonFile), process.platform === 'win32' ? 'strata_probe.exe' : 'strata_probe');
  return fs.existsSync(cli) ? cli : undefined;
}

function runProbeCli(cli: string, args: { [k: string]: string | boolean | Backend[] | undefined }, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<string> {
  const childEnv: NodeJS.ProcessEnv = { ...env };
  const vars: Record<string, string> = {
    cudaLib: 'STRATA_CUDA_LIB',
    nvmlLib: 'STRATA_NVML_LIB',
    hipLib: 'STRATA_HIP_LIB',
    vulkanLib: 'STRATA_VULKAN_LIB',
    sysfsRoot: 'STRATA_SYSFS_ROOT',
  };
  for (const [k, name] of Object.entries(vars)) {
    const v = args[k];
    if (typeof v === 'string' && v) childEnv[name] = v;
    else delete childEnv[name];
  }
  childEnv.STRATA_VULKAN_CPU = args.vulkanCpu ? '1' : '';
  const argv = Array.isArray(args.backends) ? ['--backends', args.backends.join(',')] : [];
  return new Promise((resolve, reject) => {
    execFile(cli, argv, { env: childEnv, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      if (err) {
        const why = err.killed ? `did not answer within ${timeoutMs} ms` : `failed (${err.message.split('\n')[0]})`;
        const e = new Error(`strata_probe ${why}${stderr ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`) as NodeJS.ErrnoException;
        if (typeof err.code === 'string') e.code = err.code; // a spawn failure, not the probe's exit status
        reject(e);
      } else {
        resolve(stdout);
      }
    });
  });
}

/** /proc/meminfo on Linux (MemAvailable, which counts reclaimable cache), `os` elsewhere. */
export function readSystemMemory(): SystemMemory {
  if (process.platform === 'linux') {
    try {
      const text = fs.readFileSync('/proc/meminfo', 'utf8');
      const kb = (key: string) => {
        const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
        return m ? Number(m[1]) * 1024 : undefined;
      };
      const total = kb('MemTotal');
      if (total) {
        const avail = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
        return { totalBytes: total, availableBytes: avail, source: '/proc/meminfo' };
      }
    } catch {
      /* fall through to os */
    }
  }
  // os.freemem() on macOS counts only free pages (not inactive ones): a floor, not the truth.
  return { totalBytes: os.totalmem(), availableBytes: os.freemem(), source: 'os.totalmem/os.freemem' };
}

function fallbackProbe(sysfsRoot: string, only: Backend[] | undefined, reason: string): AcceleratorProbe {
  const wants = (b: Backend) => !only || only.includes(b);
  const system = readSystemMemory();
  const devices: AcceleratorDevice[] = [];
  const backends: BackendStatus[] = [];
  for (const b of ALL_BACKENDS) {
    if (!wants(b)) continue;
    const t0 = Date.now();
    if (b === 'amdgpu') {
      const r = readAmdgpuSysfs(sysfsRoot, system.availableBytes);
      devices.push(...r.devices);
      backends.push({ ...r.status, ms: Date.now() - t0 });
    } else if (b === 'cpu') {
      devices.push({
        backend: 'cpu',
        index: 0,
        name: os.cpus()[0]?.model.trim() || 'CPU',
        architecture: os.machine(),
        integrated: true,
        totalBytes: system.totalBytes,
        freeBytes: system.availableBytes,
        budgetBytes: system.availableBytes,
        memorySource: system.source,
        pciBusId: null,
      });
      backends.push({ backend: 'cpu', status: 'ok', ms: Date.now() - t0 });
    } else {
      backends.push({ backend: b, status: 'skipped', detail: `needs the native addon, which is not in use: ${reason}`, ms: 0 });
    }
  }
  return { schema: 1, via: 'fallback', system, devices, backends };
}
