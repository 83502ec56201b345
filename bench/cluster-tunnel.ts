// What the encrypted tunnel costs against direct mode, on this machine: one peer as a separate
// host (network namespace + veth), running the real strata-peer and rpc-server; llama-server
// here puts every layer on the peer (-ngl 99) and is reached either through the sidecar-side
// tunnel endpoint (tunnel) or straight at rpc-server on the peer's address (direct). Bare (no
// RPC at all) is the reference. Needs root (namespaces).
//
//   sudo npx tsx bench/cluster-tunnel.ts [--runs 5] [--delays 0,0.2] [--model <gguf>] [--tokens 128]
//
// Per configuration and run: load time (llama-server start → /health 200), prompt processing
// and generation speed from llama-server's own timings for one request (prompt ~190 tokens,
// --tokens generated, temperature 0, cache off). Figures are medians over the runs.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AgentControlClient } from '../src/cluster/transport/agentClient';
import { TunnelEndpoint } from '../src/cluster/coordinator/tunnel';
import { ensureTinyModel } from '../test/fixtures/models';
import { startLlamaServer } from '../test/harness/llamaServer';
import { cleanupStaleNamespaces, NetnsLab, netnsSupport } from '../test/harness/netns';
import { startAgent } from '../test/integration/cluster/agents';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
}

const runs = Number(arg('--runs', '5'));
const delays = arg('--delays', '0,0.2').split(',').map(Number);
const tokens = Number(arg('--tokens', '128'));
const PROMPT = 'def quicksort(xs):\n    """Sort a list."""\n' + 'x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n'.repeat(8);

interface Sample {
  loadMs: number;
  pp: number;
  tg: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function measure(model: string, extra: string[]): Promise<Sample> {
  const t0 = Date.now();
  const srv = await startLlamaServer({ model, ctx: 1024, extraArgs: [...extra, '-t', '1', '--cache-ram', '0'] });
  const loadMs = Date.now() - t0;
  try {
    // One warm-up request, then the measured one.
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${srv.url}/completion`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${srv.apiKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ prompt: PROMPT, n_predict: tokens, temperature: 0, ignore_eos: true, cache_prompt: false }),
      });
      const j = (await res.json()) as { timings: { prompt_per_second: number; predicted_per_second: number } };
      if (i === 1) return { loadMs, pp: j.timings.prompt_per_second, tg: j.timings.predicted_per_second };
    }
    throw new Error('unreachable');
  } finally {
    await srv.stop();
  }
}

async function main(): Promise<void> {
  const s = await netnsSupport();
  if (!s.ok) throw new Error(`cannot run: ${s.reason}`);
  await cleanupStaleNamespaces();
  const model = arg('--model', '') || (await ensureTinyModel());
  const lab = new NetnsLab(s);
  const rows: string[] = [];
  try {
    const bare: Sample[] = [];
    for (let r = 0; r < runs; r++) bare.push(await measure(model, ['-ngl', '0']));
    rows.push(row('bare (no RPC, CPU here)', '-', bare));
    for (const d of delays) {
      const [host] = await lab.addHosts([{ delayMs: d }]);
      const agent = await startAgent(host, { direct: true });
      const addr = { host: host.addr, port: agent.port, token: agent.token, label: `peer (${d} ms)` };
      const tunnel = new TunnelEndpoint(addr, { open: 'rpc' });
      await tunnel.listen();
      const ctl = await AgentControlClient.connect(addr);
      const delayText = d ? `${d} ms each way (${host.delayBy})` : 'none (veth)';
      // "layers": the repeating layers on the peer, the output matrix here (what a real split
      // sends per token: one hidden state); "all": the output on the peer too, so the logits
      // (vocab × 4 bytes = 594 KiB for Qwen2) cross the link every token.
      const shapes: Array<[string, string[]]> = [
        ['layers', ['-ot', 'token_embd=CPU']],
        ['all', []],
      ];
      for (const [shape, extra] of shapes) {
        const results: Record<string, Sample[]> = { tunnel: [], direct: [] };
        for (let r = 0; r < runs; r++) {
          for (const mode of ['tunnel', 'direct'] as const) {
            const st = await ctl.request('rpc.start', { mode }, 60_000);
            const endpoint = mode === 'tunnel' ? tunnel.endpoint : `${host.addr}:${st.port}`;
            results[mode].push(await measure(model, ['--rpc', endpoint, '-ngl', '99', ...extra]));
          }
        }
        rows.push(row(`direct, ${shape}`, delayText, results.direct), row(`tunnel, ${shape}`, delayText, results.tunnel));
        const ratio = (k: keyof Sample) => median(results.tunnel.map((x) => x[k])) / median(results.direct.map((x) => x[k]));
        rows.push(
          `| **tunnel / direct, ${shape}** | ${delayText} | ×${ratio('loadMs').toFixed(2)} | ×${ratio('pp').toFixed(3)} | ×${ratio('tg').toFixed(3)} |`,
        );
      }
      ctl.close();
      await tunnel.close();
      await agent.stop();
    }
  } finally {
    await lab.cleanup();
  }
  const head = `load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(
      ' ',
    )} (${os.cpus().length} cores); model ${path.basename(model)} (${(fs.statSync(model).size / 1048576).toFixed(0)} MiB), ${runs} runs, medians; prompt ~190 tokens, ${tokens} generated\n\n| path | link delay | load ms | pp tok/s | tg tok/s |\n|---|---|---|---|---|`;
  console.log([head, ...rows].join('\n'));
}

function row(name: string, delay: string, xs: Sample[]): string {
  return `| ${name} | ${delay} | ${median(xs.map((x) => x.loadMs)).toFixed(0)} | ${median(xs.map((x) => x.pp)).toFixed(1)} | ${median(xs.map((x) => x.tg)).toFixed(1)} |`;
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
