import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { machineFromProbe } from '../../src/core/models/planner/devices';
import { probeAccelerators } from '../../src/core/native';
import { loadNative } from '../../src/core/native/loader';
import { strataCacheDir } from '../../src/core/paths';
import { benchmarkBackends, defaultBuildForModel, formatBenchTable, listInstalledBuilds, readBenchStore, modelKey } from '../../src/daemon/installer/backends';
import { inspectLlamaServer } from '../../src/daemon/installer/findLlamaServer';
import { ensureTinyModel, ensureTrainedModel } from '../fixtures/models';
import { getLlamaBinaries, getVulkanLlamaBinaries, LlamaBinaries, vulkanRunEnv } from '../harness/llamaBinaries';
import { RunningLlamaServer, startLlamaServer } from '../harness/llamaServer';
import { addonPath, repoRoot } from '../native/helpers';
import { formatRow, measureCase, relError } from './models/accuracy';

// llama.cpp's Vulkan backend for real, built by the installer from the pinned source and run on
// Mesa's lavapipe (a Vulkan device that runs on the CPU; GGML_VK_VISIBLE_DEVICES=0 makes llama.cpp
// take it) or on whatever GPU this machine has: the model on the Vulkan device, /infill and chat
// answered; the probe, llama-server's --list-devices and the planner naming the same device with
// the same memory; the planner's buffers within 5 % of what llama.cpp allocates there; and
// "Benchmark Backends" measuring the CPU and Vulkan builds. scripts/test-all.mjs builds the
// Vulkan backend before the suites; a cold build here would take most of an hour on 2 cores.

const MiB = 1024 * 1024;

describe('llama.cpp Vulkan build on the Vulkan device (lavapipe here)', function () {
  this.timeout(300_000);
  let vk: LlamaBinaries;
  let env: Record<string, string>;
  let tiny: string;

  before(async function () {
    this.timeout(90 * 60_000);
    vk = await getVulkanLlamaBinaries();
    env = await vulkanRunEnv(vk.serverPath);
    tiny = await ensureTinyModel();
  });

  const ask = async (s: RunningLlamaServer, p: string, body: unknown) => {
    const r = await fetch(`${s.url}${p}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${s.apiKey}` },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    assert.strictEqual(r.status, 200, text);
    return JSON.parse(text) as Record<string, unknown>;
  };

  /** Loads `model` with every layer on Vulkan0 and checks that llama.cpp says so. */
  const serveOnVulkan = async (model: string): Promise<RunningLlamaServer> => {
    const s = await startLlamaServer({ model, serverPath: vk.serverPath, env, ctx: 1024, extraArgs: ['-ngl', '99', '--no-warmup', '-lv', '4'] });
    const log = s.logText();
    const layers = /load_tensors: offloaded (\d+)\/(\d+) layers to GPU/.exec(log);
    assert.ok(layers, `no offload line in the load log:\n${log.slice(-3000)}`);
    assert.strictEqual(layers[1], layers[2], layers[0]);
    assert.match(log, /Vulkan0 model buffer size =\s+[\d.]+ MiB/);
    assert.match(log, /Vulkan0 KV buffer size =\s+[\d.]+ MiB/);
    return s;
  };

  for (const [label, model] of [
    ['the tiny model', () => tiny],
    ['the trained test model', () => ensureTrainedModel()],
  ] as const) {
    it(`loads ${label} on Vulkan0 (-ngl 99) and answers /infill and chat`, async () => {
      const s = await serveOnVulkan(await model());
      try {
        const infill = await ask(s, '/infill', { input_prefix: 'def add(a, b):\n    ', input_suffix: '\n\nprint(add(1, 2))\n', n_predict: 8, temperature: 0 });
        assert.ok(typeof infill.content === 'string' && infill.content.length > 0, JSON.stringify(infill));
        assert.ok((infill.tokens_predicted as number) > 0);
        const chat = await ask(s, '/v1/chat/completions', {
          messages: [{ role: 'user', content: 'Write a function that adds two numbers.' }],
          max_tokens: 8,
          temperature: 0,
        });
        const choice = (chat.choices as Array<{ message: { content: string } }>)[0];
        assert.ok(choice.message.content.length > 0, JSON.stringify(chat));
      } finally {
        await s.stop();
      }
    });
  }

  it('the probe, llama-server --list-devices and the planner name the same device with the same memory', async () => {
    loadNative(repoRoot, { ...process.env, STRATA_NATIVE: addonPath() });
    const probe = await probeAccelerators({ backends: ['vulkan'], env: { ...process.env, ...env } });
    const info = await inspectLlamaServer(vk.serverPath, { env: { ...process.env, ...env } });
    const listed = info.devices.filter((d) => d.backend === 'Vulkan');
    const probed = probe.devices.filter((d) => d.backend === 'vulkan');
    assert.strictEqual(probe.via, 'native', probe.nativeError);
    assert.ok(listed.length >= 1, JSON.stringify(info));
    assert.strictEqual(probed.length, listed.length, `probe ${JSON.stringify(probe)} vs --list-devices ${JSON.stringify(listed)}`);
    const fromList = machineFromProbe(probe, { listed: info.devices }).devices;
    const fromProbe = machineFromProbe(probe).devices;
    listed.forEach((l, i) => {
      const views = {
        probe: { name: probed[i].name, totalMiB: Math.floor(probed[i].totalBytes! / MiB), freeMiB: Math.floor(probed[i].freeBytes! / MiB) },
        listDevices: { name: l.description, totalMiB: l.totalMiB, freeMiB: l.freeMiB },
        plannerFromList: { name: fromList[i].name, totalMiB: Math.floor(fromList[i].totalBytes / MiB), freeMiB: Math.floor(fromList[i].budgetBytes / MiB) },
        plannerFromProbe: { name: fromProbe[i].name, totalMiB: Math.floor(fromProbe[i].totalBytes / MiB), freeMiB: Math.floor(fromProbe[i].budgetBytes / MiB) },
      };
      console.log(`      Vulkan${i}: ${JSON.stringify(views)}`);
      for (const v of Object.values(views)) assert.deepStrictEqual(v, views.listDevices, JSON.stringify(views));
      assert.strictEqual(fromList[i].id, `Vulkan${i}`);
      assert.strictEqual(fromProbe[i].id, `Vulkan${i}`);
    });
  });

  it('predicts the buffers on Vulkan0 (weights, KV, compute) within 5 % of what llama.cpp allocates', async () => {
    loadNative(repoRoot, { ...process.env, STRATA_NATIVE: addonPath() });
    const probe = await probeAccelerators({ backends: ['vulkan'], env: { ...process.env, ...env } });
    const [device] = machineFromProbe(probe).devices;
    assert.ok(device, JSON.stringify(probe));
    const cases = [
      { label: 'tiny on Vulkan0, FA, 2k ctx, 1 slot', ctx: 2048, slots: 1, flashAttn: true },
      { label: 'tiny on Vulkan0, no FA, 8k ctx, 2 slots', ctx: 8192, slots: 2, flashAttn: false },
    ];
    const failures: string[] = [];
    for (const k of cases) {
      const r = await measureCase({ ...k, model: tiny, mode: 'load', gpu: { serverPath: vk.serverPath, env, device } });
      console.log(`      ${formatRow(r)}`);
      for (const c of ['weights', 'kv', 'compute'] as const) {
        assert.ok(r.actual[c] > 0, `${k.label}: llama.cpp reported no Vulkan0 ${c} buffer (log format changed?)`);
        const err = relError(r.predicted[c]!, r.actual[c], 0.01 * MiB);
        if (Math.abs(err) > 0.05)
          failures.push(
            `${k.label} ${c}: predicted ${(r.predicted[c]! / MiB).toFixed(2)} MiB, llama.cpp ${(r.actual[c] / MiB).toFixed(2)} MiB (${(err * 100).toFixed(1)} %)`,
          );
      }
    }
    assert.deepStrictEqual(failures, []);
  });

  it('Benchmark Backends: llama-bench on the CPU and the Vulkan build, the faster becomes the model default, kept per model and build', async () => {
    const cpu = await getLlamaBinaries();
    const ids = [cpu, vk].map((b) => path.basename(path.dirname(path.dirname(b.serverPath))));
    const builds = listInstalledBuilds(strataCacheDir()).filter((b) => ids.includes(b.id));
    assert.deepStrictEqual(builds.map((b) => b.backend).sort(), ['cpu', 'vulkan'], JSON.stringify(builds));
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-vkbench-'));
    try {
      const record = await benchmarkBackends({
        modelPath: tiny,
        builds,
        stateDir,
        // Small runs keep CI short; bench/RESULTS.md has pp512/tg128 (bench/backends-cpu-vulkan.ts).
        bench: { nPrompt: 64, nGen: 16, repetitions: 1, args: ['-t', '2'], env },
      });
      const table = formatBenchTable(record);
      console.log(`      ${table.split('\n').join('\n      ')}`);
      const byBackend = Object.fromEntries(record.results.map((r) => [r.backend, r]));
      for (const b of ['cpu', 'vulkan']) {
        assert.ok(byBackend[b].figures, `${b}: ${byBackend[b].error}`);
        assert.ok(byBackend[b].figures!.pp > 0 && byBackend[b].figures!.tg > 0);
      }
      assert.strictEqual(byBackend.cpu.figures!.backends, 'CPU');
      assert.match(byBackend.vulkan.figures!.backends ?? '', /Vulkan/);
      const [a, b] = [byBackend.cpu.figures!, byBackend.vulkan.figures!];
      const faster = b.tg > a.tg * 1.03 || (a.tg <= b.tg * 1.03 && b.pp > a.pp) ? 'vulkan' : 'cpu';
      assert.strictEqual(record.defaultBuildId, byBackend[faster].buildId, table);
      assert.strictEqual(defaultBuildForModel(tiny, stateDir), record.defaultBuildId);
      assert.deepStrictEqual(
        readBenchStore(stateDir)
          .models[modelKey(tiny)].results.map((r) => r.buildId)
          .sort(),
        [...ids].sort(),
      );
      assert.match(table, /<- default/);
    } finally {
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
