import * as assert from 'assert';
import { tensorByteSize } from '../../../src/core/models/gguf/ggmlTypes';
import { modelLayout, ModelLayout } from '../../../src/cluster/plan/layout';
import { llamaLayerAssignment, planSplit, SplitDevice, SplitPlan } from '../../../src/cluster/plan/split';
import { MODEL_SHAPES, shapeMetadata, shapeTensors, ShapeName, ShapeQuant } from '../../../src/core/models/synthetic/shapes';

// The split planner on the real dimensions of 32B and 70B models (the shape generator's tensor
// list, no file needed), checked against llama.cpp's own layer assignment rule.

const GiB = 1024 ** 3;

function layoutOf(name: ShapeName, quant: ShapeQuant, ctx = 8192): ModelLayout {
  const shape = MODEL_SHAPES[name];
  const tensors = shapeTensors(shape, quant).map((t) => ({ ...t, byteSize: tensorByteSize(t.type, t.shape) }));
  return modelLayout({ metadata: new Map(shapeMetadata(shape, quant)), tensors } as never, { ctx });
}

function dev(host: string, id: string, freeGiB: number): SplitDevice {
  return { id, host, label: id, freeBytes: freeGiB * GiB };
}

/** The plan's ranges are exactly where llama.cpp will put the layers given its flags. */
function plan(req: Parameters<typeof planSplit>[0]): SplitPlan {
  const p = planSplit(req);
  if (!p.fits) return p;
  const ngl = Number(p.args[p.args.indexOf('-ngl') + 1]);
  const ts = p.args.includes('--tensor-split') ? p.args[p.args.indexOf('--tensor-split') + 1].split(',').map(Number) : p.tensorSplit;
  const want = new Array<number>(p.nLayer + 1).fill(-1);
  for (const s of p.shares) for (let u = s.from; u < s.to; u++) want[u] = req.devices.indexOf(s.device);
  assert.deepStrictEqual(llamaLayerAssignment(ts, p.nLayer, ngl), want, 'llama.cpp would place the layers elsewhere');
  return p;
}

describe('cluster split planner', () => {
  it('reads per-layer weights, KV and the output layer from the header', () => {
    const l = layoutOf('qwen2.5-coder-32b', 'Q4_K_M', 8192);
    assert.strictEqual(l.layerBytes.length, 64);
    const weights = l.layerBytes.reduce((a, b) => a + b, 0) + l.outputBytes + l.inputBytes;
    assert.ok(Math.abs(weights - MODEL_SHAPES['qwen2.5-coder-32b'].publishedBytes.Q4_K_M) / weights < 0.03, `${weights}`);
    // 8 KV heads × 128 dims × (K + V) × 2 bytes × 8192 tokens = 32 MiB per layer.
    assert.strictEqual(l.kvBytesPerLayer, 8192 * 8 * 256 * 2);
    assert.strictEqual(l.nVocab, 152064);
  });

  it('does not spread a model that fits on this machine', () => {
    const p = plan({
      layout: layoutOf('qwen2.5-coder-32b', 'Q4_K_M'),
      mode: 'auto',
      devices: [dev('box2', 'RPC0[box2]', 24), dev('local', 'CUDA0', 40)],
      hostFreeBytes: 64 * GiB,
    });
    assert.ok(p.fits);
    assert.deepStrictEqual(p.peersUsed, []);
    assert.deepStrictEqual(p.tensorSplit, [0, 65]);
    assert.deepStrictEqual(p.args, ['-ngl', '65', '--tensor-split', '0,65']);
    assert.match(p.summary, /on this machine alone, because it fits here/);
  });

  it('spreads a 70B that does not fit over the fewest peers, filling this machine first', () => {
    const layout = layoutOf('llama-3.3-70b', 'Q4_K_M');
    const devices = [dev('small', 'RPC0[small]', 16), dev('big', 'RPC1[big]', 48), dev('local', 'Vulkan0', 30)];
    const p = plan({ layout, mode: 'auto', devices, hostFreeBytes: 8 * GiB });
    assert.ok(p.fits, p.summary);
    assert.deepStrictEqual(p.peersUsed, ['big']);
    assert.strictEqual(p.tensorSplit[0], 0);
    const local = p.shares.find((s) => s.device.host === 'local')!;
    const big = p.shares.find((s) => s.device.host === 'big')!;
    assert.ok(local.holdsOutput && local.to === 81, 'the output goes to the last device in order: this machine');
    assert.ok(local.totalBytes <= local.budgetBytes && local.budgetBytes - local.totalBytes < 1.2 * GiB, 'this machine should be nearly full');
    assert.ok(big.totalBytes <= big.budgetBytes);
    assert.match(p.summary, /spread over this machine and 1 peer \(big\), because it does not fit here alone/);
    assert.match(p.lines.join('\n'), /peer big · RPC1\[big\]: layers 0–\d+, [\d.]+ GiB of 48\.0 GiB free\nthis machine · Vulkan0: layers \d+–79 \+ output/);
  });

  it('spreads in proportion to free memory when asked to split', () => {
    const layout = layoutOf('qwen2.5-coder-32b', 'Q8_0');
    const devices = [dev('a', 'RPC0[a]', 20), dev('b', 'RPC1[b]', 40), dev('local', 'ROCm0', 20)];
    const p = plan({ layout, mode: 'split', devices });
    assert.ok(p.fits, p.summary);
    assert.deepStrictEqual(p.peersUsed, ['a', 'b']);
    const [a, b, l] = p.tensorSplit;
    assert.strictEqual(a + b + l, 65);
    assert.ok(Math.abs(b - 2 * a) <= 3 && Math.abs(a - l) <= 4, `${p.tensorSplit}`);
    for (const s of p.shares) assert.ok(s.totalBytes <= s.budgetBytes, `${s.device.id} over budget`);
  });

  it('keeps leading layers on the CPU only as a last resort on a GPU machine', () => {
    const layout = layoutOf('llama-3.3-70b', 'Q4_K_M');
    const p = plan({ layout, mode: 'auto', devices: [dev('p', 'RPC0[p]', 12), dev('local', 'CUDA0', 24)], hostFreeBytes: 64 * GiB });
    assert.ok(p.fits);
    assert.ok(p.cpuLayers > 0);
    assert.deepStrictEqual(p.peersUsed, ['p']);
    assert.strictEqual(p.ngl, 81 - p.cpuLayers);
    assert.match(p.lines[0], /^this machine's CPU: layers 0–\d+ \([\d.]+ GiB of RAM\)$/);
  });

  it('on a machine without accelerators, a model that fits in RAM stays local (CPU)', () => {
    const layout = layoutOf('qwen2.5-coder-32b', 'Q4_K_M');
    const p = plan({ layout, mode: 'auto', devices: [dev('gpu-box', 'RPC0[gpu-box]', 80)], hostFreeBytes: 64 * GiB });
    assert.ok(p.fits);
    assert.deepStrictEqual(p.peersUsed, []);
    assert.strictEqual(p.ngl, 0);
    // Asked to split, the same machine puts everything on the peer.
    const s = plan({ layout, mode: 'split', devices: [dev('gpu-box', 'RPC0[gpu-box]', 80)], hostFreeBytes: 64 * GiB });
    assert.deepStrictEqual([s.ngl, s.cpuLayers, s.peersUsed], [65, 0, ['gpu-box']]);
  });

  it('says how much is missing when nothing fits', () => {
    const p = planSplit({
      layout: layoutOf('llama-3.3-70b', 'Q8_0'),
      mode: 'auto',
      devices: [dev('a', 'RPC0[a]', 24), dev('local', 'CUDA0', 24)],
      hostFreeBytes: 8 * GiB,
    });
    assert.ok(!p.fits);
    assert.match(
      p.summary,
      /^The model needs about \d+\.\d GiB .* but the devices offer \d+\.\d GiB after headroom: add a peer, use a smaller quantization, or lower the context size\.$/,
    );
  });

  it("reproduces llama.cpp's float32 assignment for uneven splits", () => {
    // -ts 3,1 over 4 units: 0.75 cut; -ts 2,2,1 over 5: units 0-1, 2-3, 4.
    assert.deepStrictEqual(llamaLayerAssignment([3, 1], 3, 4), [0, 0, 0, 1]);
    assert.deepStrictEqual(llamaLayerAssignment([2, 2, 1], 4, 99), [0, 0, 1, 1, 2]);
    assert.deepStrictEqual(llamaLayerAssignment([0, 5], 4, 3), [-1, -1, 1, 1, 1]);
    // Random unit counts always land exactly (no float rounding surprise up to 200 layers).
    for (let t = 0; t < 200; t++) {
      const n = 1 + Math.floor(Math.random() * 200);
      const k = 1 + Math.floor(Math.random() * 5);
      const counts = new Array<number>(k).fill(0);
      for (let u = 0; u <= n; u++) counts[Math.floor(Math.random() * k)]++;
      const want: number[] = [];
      counts.forEach((c, j) => {
        for (let i = 0; i < c; i++) want.push(j);
      });
      assert.deepStrictEqual(llamaLayerAssignment(counts, n, n + 1), want, `counts ${counts}`);
    }
  });
});
