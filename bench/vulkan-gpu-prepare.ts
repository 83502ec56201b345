// Prepares CUDA vs Vulkan on the GPU machine (Ubuntu 24.04, NVIDIA driver with its Vulkan ICD,
// but no Vulkan loader, headers or glslc). Fills .gpu/ (git-ignored; carried with the device
// `run` tool's `carry: [".gpu"]`):
//   llama-src.tar.xz    the pinned llama.cpp source (~8 MB; kept if present)
//   vulkan-debs/*.deb   Debian 13's glslc, libshaderc1, libc6/libstdc++6/libgcc-s1 (glslc's own
//                       runtime: it needs glibc 2.38), libvulkan-dev, spirv-headers and libvulkan1
//                       (the loader), fetched with scripts/vulkan-sdk.mjs's private apt configuration
//   vulkan/shapes.json, vulkan/shapes/   the 32B shape (Qwen2.5-Coder-32B Q4_K_M) as header + extents
// Then there: bash bench/vulkan-gpu.sh build-cuda; bash bench/vulkan-gpu.sh build-vulkan; bash bench/vulkan-gpu.sh bench
//
//   npx tsx bench/vulkan-gpu-prepare.ts [--out .gpu]

import * as fs from 'fs';
import * as path from 'path';
import { downloadDebianVulkanDebs } from '../scripts/vulkan-sdk.mjs';
import { ensureShapeModel } from '../test/fixtures/models';
import { ensureIgnored, ShapeExtents, writeShapeExtents } from './lib/gpuCarry';
import { packLlamaSource } from './lib/packLlamaSource';

async function main(): Promise<void> {
  const outArg = process.argv.indexOf('--out');
  const root = path.resolve(__dirname, '..');
  const out = path.resolve(outArg > 0 ? process.argv[outArg + 1] : path.join(root, '.gpu'));
  const mine = path.join(out, 'vulkan');
  fs.mkdirSync(path.join(mine, 'shapes'), { recursive: true });
  ensureIgnored(out);
  await packLlamaSource(path.join(out, 'llama-src.tar.xz'), { keep: true });
  const debs = path.join(out, 'vulkan-debs');
  if (!fs.existsSync(debs) || !fs.readdirSync(debs).some((f) => f.startsWith('glslc_'))) {
    fs.mkdirSync(debs, { recursive: true });
    downloadDebianVulkanDebs(debs, process.env, ['libvulkan1']);
  }
  const name = 'qwen2.5-coder-32b-Q4_K_M.gguf';
  const shapes: Record<string, ShapeExtents> = { [name]: await writeShapeExtents(await ensureShapeModel('qwen2.5-coder-32b', 'Q4_K_M'), name, mine) };
  fs.writeFileSync(path.join(mine, 'shapes.json'), JSON.stringify(shapes, null, 1));
  let bytes = 0;
  const walk = (d: string) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else bytes += fs.statSync(p).size; } };
  walk(out);
  console.log(`wrote ${out}: ${(bytes / 1024 ** 2).toFixed(1)} MiB to carry`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
