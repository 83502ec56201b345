// npm run models: writes (or finds) every generated test model and prints where it is.
// Shape files are sparse: their size is the real model's, their disk use a few MB.

import * as fs from 'fs';
import { ensureShapeModel, ensureTinyModel, testModelsDir } from '../test/fixtures/models';
import { SHAPE_NAMES, SHAPE_QUANTS } from '../src/core/models/synthetic/shapes';

async function main(): Promise<void> {
  console.log(`test models in ${testModelsDir()}`);
  const jobs: Array<[string, () => Promise<string>]> = [
    ['tiny qwen2 (F16, 4 layers)', () => ensureTinyModel()],
    ...SHAPE_NAMES.flatMap((s) => SHAPE_QUANTS.map((q): [string, () => Promise<string>] => [`${s} ${q} (sparse)`, () => ensureShapeModel(s, q)])),
  ];
  for (const [label, make] of jobs) {
    const t0 = Date.now();
    const file = await make();
    const st = fs.statSync(file);
    const onDisk = st.blocks * 512;
    console.log(`${label.padEnd(34)} ${fmt(st.size).padStart(10)} (${fmt(onDisk)} on disk) ${String(Date.now() - t0).padStart(6)} ms  ${file}`);
  }
}

function fmt(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
