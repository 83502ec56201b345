import * as assert from 'assert';
import { buildCatalog } from '../../../src/core/models/catalog/catalog';
import { machineFromProbe } from '../../../src/core/models/planner/devices';
import { planRows, rowText } from '../../../src/core/models/switcher';

const GiB = 1024 ** 3;

describe('Switch Model rows', () => {
  const machine = machineFromProbe({
    schema: 1, via: 'fallback', backends: [],
    system: { totalBytes: 124.5 * GiB, availableBytes: 118 * GiB, source: 'test' },
    devices: [{ backend: 'amdgpu', index: 0, name: 'AMD Radeon 8060S', architecture: 'gfx1151', integrated: true, totalBytes: null, freeBytes: null, budgetBytes: 62 * GiB, memorySource: 'amdgpu-sysfs', pciBusId: '0000:c5:00.0', vram: { totalBytes: 0.5 * GiB, usedBytes: 0.2 * GiB }, gtt: { totalBytes: 62 * GiB, usedBytes: 0.3 * GiB } }],
  });
  const cfg = { directories: [], downloadDir: '/nonexistent', custom: [], contextSize: 0, kvCacheType: 'auto' as const, slots: 0 };

  it('plans every preset quant not yet downloaded from its architecture and size', async () => {
    const rows = await planRows(buildCatalog({ local: [] }).filter((e) => e.kind === 'preset'), machine, cfg, 'chat');
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
});
