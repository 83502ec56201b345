import * as fs from 'fs';
import * as path from 'path';
import type { AcceleratorDevice, BackendStatus, MemPool } from './types';

// The TypeScript twin of native/src/sysfs.cpp: AMD GPUs as the Linux amdgpu driver reports them.
// The one thing it cannot do is the driver ioctl that says "APU" for certain; it relies on the
// ISA table below, as the addon does when the render node cannot be opened. Budget rules (same
// as the addon): a discrete GPU gets free VRAM; an APU gets free VRAM plus free GTT, the latter
// capped by MemAvailable because GTT pages are ordinary RAM the CPU side is also using.

/** ISAs that only ever shipped in APUs (gfx942 is left out: MI300A is an APU, MI300X is not). */
const APU_ISAS = new Set([
  'gfx801',
  'gfx810',
  'gfx902',
  'gfx909',
  'gfx90c',
  'gfx1033',
  'gfx1035',
  'gfx1036',
  'gfx1103',
  'gfx1150',
  'gfx1151',
  'gfx1152',
  'gfx1153',
]);

function readLine(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n')[0].trim();
  } catch {
    return '';
  }
}

function readNum(file: string): number | undefined {
  const s = readLine(file);
  if (!s) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

function list(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .sort();
  } catch {
    return [];
  }
}

/** KFD writes the ISA as major*10000 + minor*100 + stepping; minor and stepping print in hex. */
export function gfxName(v: number): string {
  return `gfx${Math.floor(v / 10000)}${(Math.floor(v / 100) % 100).toString(16)}${(v % 100).toString(16)}`;
}

function kfdArch(root: string, pci: string): string | null {
  const m = /^([0-9a-f]+):([0-9a-f]+):([0-9a-f]+)\.([0-9a-f]+)$/i.exec(pci);
  if (!m) return null;
  const [dom, bus, dev, fn] = m.slice(1).map((x) => parseInt(x, 16));
  const location = (bus << 8) | (dev << 3) | fn;
  const nodes = path.join(root, 'class', 'kfd', 'kfd', 'topology', 'nodes');
  for (const n of list(nodes)) {
    let text = '';
    try {
      text = fs.readFileSync(path.join(nodes, n, 'properties'), 'utf8');
    } catch {
      continue;
    }
    const props = new Map<string, number>();
    for (const line of text.split('\n')) {
      const [k, v] = line.trim().split(/\s+/);
      if (k && v !== undefined) props.set(k, Number(v));
    }
    const gfx = props.get('gfx_target_version') ?? 0;
    if (gfx && props.get('location_id') === location && (props.get('domain') ?? 0) === dom) return gfxName(gfx);
  }
  return null;
}

/** Reads `<root>/class/drm/card*` (root is /sys normally). */
export function readAmdgpuSysfs(root: string, availableBytes: number): { devices: AcceleratorDevice[]; status: Omit<BackendStatus, 'ms'> } {
  if (process.platform !== 'linux' && root === '/sys') {
    return { devices: [], status: { backend: 'amdgpu', status: 'unsupported', detail: 'amdgpu sysfs exists only on Linux' } };
  }
  const drm = path.join(root, 'class', 'drm');
  const cards = list(drm)
    .filter((n) => /^card\d+$/.test(n))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  if (!cards.length) return { devices: [], status: { backend: 'amdgpu', status: 'absent', detail: `no DRM cards under ${drm}` } };
  const devices: AcceleratorDevice[] = [];
  const notes: string[] = [];
  for (const card of cards) {
    const dev = path.join(drm, card, 'device');
    if (readLine(path.join(dev, 'vendor')) !== '0x1002') continue;
    const vramTotal = readNum(path.join(dev, 'mem_info_vram_total'));
    if (vramTotal === undefined) {
      notes.push(`${card}: AMD, but no mem_info_vram_total (radeon driver, or amdgpu too old)`);
      continue;
    }
    const vram: MemPool = { totalBytes: vramTotal, usedBytes: readNum(path.join(dev, 'mem_info_vram_used')) ?? 0 };
    const gtt: MemPool = {
      totalBytes: readNum(path.join(dev, 'mem_info_gtt_total')) ?? 0,
      usedBytes: readNum(path.join(dev, 'mem_info_gtt_used')) ?? 0,
    };
    let pci = '';
    try {
      pci = path.basename(fs.realpathSync(dev)).toLowerCase();
    } catch {
      /* no device link: leave it unknown */
    }
    const product = readLine(path.join(dev, 'product_name'));
    const deviceId = readLine(path.join(dev, 'device'));
    const architecture = pci ? kfdArch(root, pci) : null;
    const integrated = architecture && APU_ISAS.has(architecture) ? true : null;
    const vramFree = Math.max(0, vram.totalBytes - vram.usedBytes);
    const gttFree = Math.max(0, gtt.totalBytes - gtt.usedBytes);
    devices.push({
      backend: 'amdgpu',
      index: devices.length,
      name: product || `AMD GPU ${deviceId || card}`,
      architecture,
      integrated,
      totalBytes: integrated ? vram.totalBytes + gtt.totalBytes : vram.totalBytes,
      freeBytes: integrated ? vramFree + gttFree : vramFree,
      budgetBytes: integrated ? vramFree + Math.min(gttFree, availableBytes) : vramFree,
      memorySource: 'amdgpu-sysfs',
      pciBusId: pci || null,
      vendorId: '0x1002',
      vram,
      gtt,
    });
  }
  if (!devices.length) {
    return { devices, status: { backend: 'amdgpu', status: 'absent', detail: notes.length ? notes.join('; ') : `no AMD GPU under ${drm}` } };
  }
  const detail = [`${devices.length} device(s)`, ...notes].join('; ');
  return { devices, status: { backend: 'amdgpu', status: 'ok', detail } };
}
