// "Benchmark Backends" for real on this machine: the installer's CPU and Vulkan builds of the
// pinned llama.cpp, llama-bench pp512/tg128 through benchmarkBackends (the path the
// "Strata: Benchmark Backends" command takes), on the tiny and the trained test models. Writes
// the table and every raw llama-bench JSON line under bench/results/<out>/.
//
//   npx tsx bench/backends-cpu-vulkan.ts [--out backends-cpu-vulkan-<date>] [--reps 3] [--threads 2]
//
// On a GPU-less machine the Vulkan device is Mesa's lavapipe (GGML_VK_VISIBLE_DEVICES=0).

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { strataCacheDir } from '../src/core/paths';
import { benchmarkBackends, formatBenchTable, listInstalledBuilds } from '../src/daemon/installer/backends';
import { ensureTinyModel, ensureTrainedModel } from '../test/fixtures/models';
import { getLlamaBinaries, getVulkanLlamaBinaries, vulkanRunEnv } from '../test/harness/llamaBinaries';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

async function main(): Promise<void> {
  const out = path.resolve(__dirname, 'results', arg('out', `backends-cpu-vulkan-${new Date().toISOString().slice(0, 10)}`));
  const reps = Number(arg('reps', '3'));
  const threads = arg('threads', '2');
  fs.mkdirSync(out, { recursive: true });
  const [cpu, vk] = [await getLlamaBinaries(), await getVulkanLlamaBinaries()];
  const env = await vulkanRunEnv(vk.serverPath);
  const ids = [cpu, vk].map((b) => path.basename(path.dirname(path.dirname(b.serverPath))));
  const builds = listInstalledBuilds(strataCacheDir()).filter((b) => ids.includes(b.id));
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-backends-'));
  const header = [
    `# ${new Date().toISOString()} ${os.hostname()} ${os.cpus().length} x ${os.cpus()[0]?.model.trim()}, load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
    `# builds: ${ids.join(', ')}; llama-bench -p 512 -n 128 -r ${reps} -t ${threads} -ngl 99; env ${JSON.stringify(env)}`,
  ];
  const report: string[] = [...header];
  for (const [label, model] of [
    ['tiny', await ensureTinyModel()],
    ['trained', await ensureTrainedModel()],
  ] as const) {
    const raw = fs.createWriteStream(path.join(out, `${label}-llama-bench.log`));
    raw.write(`${header.join('\n')}\n# model ${model}\n`);
    const record = await benchmarkBackends({
      modelPath: model,
      builds,
      stateDir,
      bench: { nPrompt: 512, nGen: 128, repetitions: reps, args: ['-t', threads], env },
      onProgress: (m) => {
        raw.write(`## ${m}\n`);
        process.stderr.write(`${m}\n`);
      },
      onLine: (l) => raw.write(`${l}\n`),
    });
    await new Promise((r) => raw.end(r));
    fs.writeFileSync(path.join(out, `${label}-record.json`), JSON.stringify(record, null, 2) + '\n');
    const table = formatBenchTable(record);
    report.push('', `## ${label} model (${path.basename(model)})`, table);
    process.stdout.write(`${table}\n`);
  }
  fs.writeFileSync(path.join(out, 'summary.txt'), report.join('\n') + '\n');
  fs.rmSync(stateDir, { recursive: true, force: true });
  process.stdout.write(`raw output in ${path.relative(process.cwd(), out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
