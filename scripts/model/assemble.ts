// Step 3 of the test-model recipe (here): joins the GGUF parts the GPU machine sent back, checks
// them against the sha256 computed there, and installs the model as the repository's fixture
// (test/fixtures/model/) with its checksum, training log and the record of its sources.
//
//   npx tsx scripts/model/assemble.ts <folder the device run wrote ($OUT)>
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../..');
const DEST = path.join(ROOT, 'test/fixtures/model');

function main() {
  const from = process.argv[2];
  if (!from || !fs.existsSync(from)) throw new Error('usage: npx tsx scripts/model/assemble.ts <folder with strata-test-coder.gguf.partNN>');
  const parts = fs
    .readdirSync(from)
    .filter((f) => /^strata-test-coder\.gguf\.part\d+$/.test(f))
    .sort();
  if (parts.length === 0) throw new Error(`${from} has no strata-test-coder.gguf.partNN files: run scripts/model/gpu-train.sh on the GPU machine first.`);
  const data = Buffer.concat(parts.map((p) => fs.readFileSync(path.join(from, p))));
  const want = fs.readFileSync(path.join(from, 'strata-test-coder.gguf.sha256'), 'utf8').split(/\s+/)[0];
  const got = crypto.createHash('sha256').update(data).digest('hex');
  if (got !== want) throw new Error(`joined parts have sha256 ${got}, the GPU machine wrote ${want}: a part is missing or damaged.`);
  if (data.length > 32 * 2 ** 20) throw new Error(`the model is ${(data.length / 2 ** 20).toFixed(1)} MiB; the fixture budget is 32 MiB: train a smaller one.`);
  fs.mkdirSync(DEST, { recursive: true });
  fs.writeFileSync(path.join(DEST, 'strata-test-coder.gguf'), data);
  fs.writeFileSync(path.join(DEST, 'strata-test-coder.gguf.sha256'), `${got}  strata-test-coder.gguf\n`);
  for (const f of ['train-log.json', 'tokenizer.json', 'train.log', 'gpu.txt']) {
    if (fs.existsSync(path.join(from, f))) fs.copyFileSync(path.join(from, f), path.join(DEST, f));
  }
  const sources = path.join(ROOT, '.gpu/model/data/sources.json');
  if (fs.existsSync(sources)) fs.copyFileSync(sources, path.join(DEST, 'sources.json'));
  console.log(`installed ${path.relative(ROOT, DEST)}/strata-test-coder.gguf (${(data.length / 2 ** 20).toFixed(1)} MiB, sha256 ${got})`);
}

try {
  main();
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
}
