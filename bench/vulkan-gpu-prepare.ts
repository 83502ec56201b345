// Prepares CUDA vs Vulkan on the GPU machine (Ubuntu 24.04, NVIDIA driver with its Vulkan ICD,
// but no Vulkan loader, headers or glslc). Fills .gpu/ (git-ignored; carried with the device
// `run` tool's `carry: [".gpu"]`):
//   llama-src.tar.xz    the pinned llama.cpp source (~8 MB; kept if present)
//   vulkan-debs/*.deb   Debian 13's glslc, libshaderc1, libc6/libstdc++6/libgcc-s1 (glslc's own
//                       runtime: it needs glibc 2.38), libvulkan-dev, spirv-headers and libvulkan1
//                       (the loader), fetched with scripts/vulkan-sdk.mjs's private apt configuration
//   vulkan/shapes.json, vulkan/shapes/   the 32B and 70B Q4_K_M shapes as header + extents (gzip, ~4 MB)
//   vulkan/cases.json   the planner-accuracy cases with the planner's prediction for Vulkan0 on
//                       the H200 (bench/models-gpu/measure.py runs them; bench/models-accuracy.ts
//                       --device Vulkan0 compares)
// Then there: the `run` commands at the top of bench/vulkan-gpu.sh.
//
//   npx tsx bench/vulkan-gpu-prepare.ts [--out .gpu]
//   npx tsx bench/vulkan-gpu-prepare.ts --probe <files_at>/probe-vulkan.json [--out DIR]
//        afterwards: only rewrites <out>/vulkan/cases.json, predicting for Vulkan0 as the planner
//        builds it from that probe (its maxStorageBufferRange, if reported, included); the
//        cases' llama-server flags do not depend on the device, so the device results still apply

import * as fs from 'fs';
import * as path from 'path';
import { downloadDebianVulkanDebs } from '../scripts/vulkan-sdk.mjs';
import { machineFromProbe, PlannerDevice } from '../src/core/models/planner/devices';
import type { AcceleratorProbe } from '../src/core/native/types';
import { ensureIgnored } from './lib/gpuCarry';
import { CaseSpec, prepareCases } from './lib/gpuCases';
import { packLlamaSource } from './lib/packLlamaSource';

const GiB = 1024 ** 3;

// Q4_K_M only: the Q8_0 shapes would add two more headers to a carry that must stay under ~55 MiB,
// and the quant changes nothing the Vulkan backend does differently from CUDA in buffer sizes.
const CASES: CaseSpec[] = [
  { id: '32b-q4km-fa-32k', shapeName: 'qwen2.5-coder-32b', quant: 'Q4_K_M', ctx: 32768, slots: 1, flashAttn: true, kv: 'f16', load: true },
  { id: '32b-q4km-nofa-8k', shapeName: 'qwen2.5-coder-32b', quant: 'Q4_K_M', ctx: 8192, slots: 1, flashAttn: false, kv: 'f16', load: true },
  { id: '32b-q4km-fa-16k-np2-q8kv', shapeName: 'qwen2.5-coder-32b', quant: 'Q4_K_M', ctx: 16384, slots: 2, flashAttn: true, kv: 'q8_0', load: true },
  { id: '70b-q4km-fa-16k', shapeName: 'llama-3.3-70b', quant: 'Q4_K_M', ctx: 16384, slots: 1, flashAttn: true, kv: 'f16', load: true },
  { id: '70b-q4km-nofa-4k-np4', shapeName: 'llama-3.3-70b', quant: 'Q4_K_M', ctx: 4096, slots: 4, flashAttn: false, kv: 'f16', load: true },
];

/**
 * The H200 as the planner sees it through llama.cpp's Vulkan backend: device Vulkan0, Vulkan's
 * 32-byte buffer alignment (devices.ts alignmentFor). Budget and total only matter for a layer
 * split over several GPUs; maxOpBytes (maxStorageBufferRange) is left out: no tensor of these
 * shapes comes near NVIDIA's 4 GiB.
 */
export const H200_VULKAN: PlannerDevice = {
  id: 'Vulkan0',
  name: 'NVIDIA H200',
  kind: 'discrete',
  budgetBytes: 139 * GiB,
  totalBytes: 140 * GiB,
  bandwidthGBps: 4800,
  bandwidthSource: 'table',
  alignment: 32,
};

/** Vulkan0 as the planner builds it from a real probe (strata_probe's JSON, e.g. the device run's probe-vulkan.json). */
function vulkanDeviceFromProbe(file: string): PlannerDevice {
  const probe = { ...(JSON.parse(fs.readFileSync(file, 'utf8')) as Omit<AcceleratorProbe, 'via'>), via: 'native' } as AcceleratorProbe;
  const device = machineFromProbe(probe).devices.find((d) => d.id === 'Vulkan0');
  if (!device) throw new Error(`${file} has no Vulkan device: run the probe phase of bench/vulkan-gpu.sh again and check its probe.tsv.`);
  return device;
}

async function main(): Promise<void> {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const root = path.resolve(__dirname, '..');
  const out = path.resolve(arg('--out') ?? path.join(root, '.gpu'));
  const mine = path.join(out, 'vulkan');
  const probeFile = arg('--probe');
  fs.rmSync(path.join(mine, 'shapes'), { recursive: true, force: true }); // no stale extents in the carry
  fs.mkdirSync(path.join(mine, 'shapes'), { recursive: true });
  ensureIgnored(out);
  if (!probeFile) {
    await packLlamaSource(path.join(out, 'llama-src.tar.xz'), { keep: true });
    const debs = path.join(out, 'vulkan-debs');
    if (!fs.existsSync(debs) || !fs.readdirSync(debs).some((f) => f.startsWith('glslc_'))) {
      fs.mkdirSync(debs, { recursive: true });
      downloadDebianVulkanDebs(debs, process.env, ['libvulkan1']);
    }
  }
  // The bench uses the 32B shape (qwen2.5-coder-32b-Q4_K_M.gguf), the cases both.
  const device = probeFile ? vulkanDeviceFromProbe(probeFile) : H200_VULKAN;
  console.log(`predicting for ${device.id}: ${device.name}, alignment ${device.alignment}, maxOpBytes ${device.maxOpBytes ?? 'none'}`);
  const { cases, shapes } = await prepareCases(CASES, device, mine, { gzip: true });
  fs.writeFileSync(path.join(mine, 'shapes.json'), JSON.stringify(shapes, null, 1));
  fs.writeFileSync(path.join(mine, 'cases.json'), JSON.stringify(cases, null, 1));
  let bytes = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else bytes += fs.statSync(p).size;
    }
  };
  walk(out);
  console.log(`wrote ${out}: ${(bytes / 1024 ** 2).toFixed(1)} MiB to carry`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
