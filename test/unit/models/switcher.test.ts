import * as assert from 'assert';
import { buildCatalog } from '../../../src/core/models/catalog/catalog';
import { machineFromProbe } from '../../../src/core/models/planner/devices';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { planRows, rowText, sortRows } from '../../../src/core/models/switcher';

const GiB = 1024 ** 3;

describe('Switch Model rows', function () {
  // Each case plans every catalog preset (≈1–2 s of CPU alone); on a loaded 2-core CI machine that
  // took over 10 s (two timeouts in a fresh-clone run at load 18), so the budget is CPU-load proof.
  this.timeout(60_000);
  const machine = machineFromProbe({
    schema: 1,
    via: 'fallback',
    backends: [],
    system: { totalBytes: 124.5 * GiB, availableBytes: 118 * GiB, source: 'test' },
    devices: [
      {
        backend: 'amdgpu',
        index: 0,
        name: 'AMD Radeon 8060S',
        architecture: 'gfx1151',
        integrated: true,
        totalBytes: null,
        freeBytes: null,
        budgetBytes: 62 * GiB,
        memorySource: 'amdgpu-sysfs',
        pciBusId: '0000:c5:00.0',
        vram: { totalBytes: 0.5 * GiB, usedBytes: 0.2 * GiB },
        gtt: { totalBytes: 62 * GiB, usedBytes: 0.3 * GiB },
      },
    ],
  });
  const cfg = { directories: [], downloadDir: '/nonexistent', custom: [], contextSize: 0, kvCacheType: 'auto' as const, slots: 0 };

  it('plans every preset quant not yet downloaded from its architecture and size', async () => {
    const rows = await planRows(
      buildCatalog({ local: [] }).filter((e) => e.kind === 'preset'),
      machine,
      cfg,
      'chat',
    );
    const text = (key: string) => rowText(rows.find((r) => r.entry.key === key)!);
    const q32 = text('preset:qwen2.5-coder-32b:Q4_K_M');
    assert.strictEqual(q32.label, 'Qwen2.5 Coder 32B Instruct');
    assert.match(q32.description, /^Q4_K_M · 20 GB · [\d.]+–[\d.]+ tok\/s \(estimate\)$/);
    assert.match(q32.detail, /^\$\(pass\) fits · 32k ctx · \d+(\.\d)? GiB planned · \$\(cloud-download\) download 20 GB · Apache-2\.0$/);
    const l70q8 = text('preset:llama-3.3-70b:Q8_0');
    assert.match(l70q8.detail, /^\$\(warning\) fits with \d+k ctx|\$\(error\) does not fit/);
    const moe = text('preset:qwen3-coder-30b-a3b:Q4_K_M');
    assert.match(moe.description, /\(est\.\)/, 'sizes not read from the hub say so');
  });

  it('lists what fits first, what is on disk first among those, what does not fit last', async () => {
    // A 24 GB GPU: the 70B rows do not fit.
    const gpu = machineFromProbe({
      schema: 1,
      via: 'native',
      backends: [],
      system: { totalBytes: 32 * GiB, availableBytes: 20 * GiB, source: 'test' },
      devices: [
        {
          backend: 'cuda',
          index: 0,
          name: 'NVIDIA GeForce RTX 4090',
          architecture: 'sm_89',
          integrated: false,
          totalBytes: 24 * GiB,
          freeBytes: 23 * GiB,
          budgetBytes: 23 * GiB,
          memorySource: 'nvml',
          pciBusId: '0000:01:00.0',
        },
      ],
    });
    const rows = await planRows(
      buildCatalog({ local: [] }).filter((e) => e.kind === 'preset' && e.roles.includes('chat')),
      gpu,
      cfg,
      'chat',
    );
    // One of them "on disk": the picker must put it first among the models that fit.
    const q14 = rows.find((r) => r.entry.key === 'preset:qwen2.5-coder-14b:Q8_0')!;
    q14.entry = { ...q14.entry, downloaded: true, path: '/m/q14.gguf' };
    const sorted = sortRows(rows);
    assert.strictEqual(sorted[0].entry.key, 'preset:qwen2.5-coder-14b:Q8_0');
    const verdicts = sorted.map((r) => r.plan?.verdict === 'does-not-fit');
    assert.ok(
      verdicts.indexOf(true) > 0 && verdicts.slice(verdicts.indexOf(true)).every(Boolean),
      `does-not-fit rows are not last: ${sorted.map((r) => `${r.entry.key}:${r.plan?.verdict}`).join(', ')}`,
    );
  });

  it('a download cancelled half way shows how far it got and that picking it resumes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-partial-'));
    try {
      const entry = buildCatalog({ local: [] }).find((e) => e.key === 'preset:qwen2.5-coder-7b:Q4_K_M')!;
      const dest = path.join(dir, ...entry.repo!.split('/'), entry.files![0]);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      // A sparse .part of 1.2 GB: what an interrupted download leaves.
      fs.closeSync(fs.openSync(`${dest}.part`, 'w'));
      fs.truncateSync(`${dest}.part`, 1.2e9);
      const [row] = await planRows([entry], machine, { ...cfg, downloadDir: dir }, 'chat');
      assert.strictEqual(row.partialBytes, 1.2e9);
      assert.match(rowText(row).detail, /\$\(debug-pause\) download paused at 1\.2 GB of 4\.7 GB: pick it to resume/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
