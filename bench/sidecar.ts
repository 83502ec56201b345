// Sidecar benchmark (issue 3, item 9): what running llama-server through the Strata sidecar
// costs compared with starting the same llama-server command by hand.
//
//   1. load -> ready: the daemon's `load` request until it answers ready, vs spawning the same
//      command line by hand and polling /health every 10 ms until it answers 200 (ratio);
//   2. per-request overhead: sequential /infill requests against the daemon's llama-server vs the
//      hand-started one (the sidecar is not on the inference path: the window calls llama-server
//      directly, so what differs is the flags and the daemon's monitoring next to it);
//   3. generation tok/s (llama-server's own timings) through Strata vs bare, longer answers;
//   4. the control path: a `status` round trip over the daemon's WebSocket.
// The two sides alternate, one server at a time.
//
//   npx tsx bench/sidecar.ts [--rounds 5] [--requests 30] [--n-predict 16] [--gen-tokens 128]
//                            [--model m.gguf] [--server llama-server] [--args "-t 2 --no-repack"]
//                            [--write]          append/replace the "Sidecar" section of bench/RESULTS.md
//   npx tsx bench/sidecar.ts --pack out/bench-gpu   prepare a folder to carry to a GPU machine (see README)
//   node bench.js --shape-model out.gguf --vocab ggml-vocab-qwen2.gguf   (on that machine) write a 32B-shaped model
import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ServerPlan } from '../src/core/protocol';
import { writeSecretFile } from '../src/core/secretFile';
import { connectOrStartSidecar, SidecarClient } from '../src/core/daemonClient';
import { pickFreePort } from '../src/daemon/ports';

interface Args {
  rounds: number;
  requests: number;
  nPredict: number;
  genTokens: number;
  model?: string;
  server?: string;
  args?: string[];
  write: boolean;
  pack?: string;
  shapeModel?: string;
  vocab?: string;
  sidecarScript?: string;
  label?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { rounds: 5, requests: 30, nPredict: 16, genTokens: 128, write: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--rounds') a.rounds = Number(v());
    else if (k === '--requests') a.requests = Number(v());
    else if (k === '--n-predict') a.nPredict = Number(v());
    else if (k === '--gen-tokens') a.genTokens = Number(v());
    else if (k === '--model') a.model = path.resolve(v());
    else if (k === '--server') a.server = path.resolve(v());
    else if (k === '--args') a.args = v().split(/\s+/).filter(Boolean);
    else if (k === '--write') a.write = true;
    else if (k === '--pack') a.pack = path.resolve(v());
    else if (k === '--shape-model') a.shapeModel = path.resolve(v());
    else if (k === '--vocab') a.vocab = path.resolve(v());
    else if (k === '--sidecar') a.sidecarScript = path.resolve(v());
    else if (k === '--label') a.label = v();
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function pctile(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

interface Endpoint {
  url: string;
  apiKey: string;
}

/** The same prompts for both sides; distinct so that no answer comes from a cache. */
function prompt(i: number): { input_prefix: string; input_suffix: string } {
  return { input_prefix: `def f${i}(a, b):\n    """Return a combined with b (${i})."""\n    return `, input_suffix: '\n\n\nprint(1)\n' };
}

async function infill(ep: Endpoint, i: number, nPredict: number): Promise<{ ms: number; tps?: number; n?: number }> {
  const t0 = performance.now();
  const res = await fetch(`${ep.url}/infill`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ep.apiKey}` },
    body: JSON.stringify({ ...prompt(i), n_predict: nPredict, cache_prompt: true, temperature: 0, samplers: ['top_k'], top_k: 1, ignore_eos: true }),
  });
  const j = (await res.json()) as { timings?: { predicted_per_second?: number; predicted_n?: number } };
  if (!res.ok) throw new Error(`/infill ${res.status}: ${JSON.stringify(j).slice(0, 200)}`);
  return { ms: performance.now() - t0, tps: j.timings?.predicted_per_second, n: j.timings?.predicted_n };
}

interface SideFigures {
  readyMs: number[];
  requestMs: number[];
  genTps: number[];
}

async function measureRequests(ep: Endpoint, a: Args, into: SideFigures, offset: number): Promise<void> {
  // One warm-up request (first-request allocations), not counted, on both sides.
  await infill(ep, 100_000 + offset, a.nPredict);
  for (let i = 0; i < a.requests; i++) into.requestMs.push((await infill(ep, offset + i, a.nPredict)).ms);
  for (let i = 0; i < 3; i++) {
    const r = await infill(ep, 50_000 + offset + i, a.genTokens);
    if (r.tps) into.genTps.push(r.tps);
  }
}

/** The command the supervisor runs for this plan, started by hand (the key in a 0600 file, as llamaProcess.ts gives it). */
async function byHand(plan: ServerPlan, a: Args, into: SideFigures, round: number): Promise<void> {
  const port = await pickFreePort();
  const apiKey = crypto.randomBytes(24).toString('base64url');
  const keyFile = writeSecretFile(apiKey, { name: 'llama-server-api-key' });
  const args = ['-m', plan.modelPath, '--host', '127.0.0.1', '--port', String(port), '--metrics', ...plan.args, '--api-key-file', keyFile.path];
  const env = { ...process.env };
  delete env.ELECTRON_RUN_AS_NODE;
  const t0 = performance.now();
  const child = spawn(plan.binaryPath, args, { stdio: ['ignore', 'ignore', 'ignore'], env });
  let exited = false;
  child.on('exit', () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  try {
    for (;;) {
      if (exited) throw new Error('llama-server (by hand) exited before it was ready');
      try {
        const r = await fetch(`${url}/health`);
        await r.arrayBuffer();
        if (r.status === 200) break;
      } catch {
        /* not listening yet */
      }
      await sleep(10);
    }
    into.readyMs.push(performance.now() - t0);
    await measureRequests({ url, apiKey }, a, into, round * 1000);
  } finally {
    child.kill('SIGTERM');
    await new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
    keyFile.remove();
  }
}

async function viaSidecar(client: SidecarClient, plan: ServerPlan, a: Args, into: SideFigures, round: number): Promise<void> {
  const t0 = performance.now();
  const st = await client.load(plan);
  into.readyMs.push(performance.now() - t0);
  const ep = st.endpoint!;
  try {
    await measureRequests({ url: ep.url, apiKey: ep.apiKey }, a, into, round * 1000);
  } finally {
    await client.unload();
  }
}

function ensureSidecarBundle(a: Args): string {
  if (a.sidecarScript) return a.sidecarScript;
  const root = path.resolve(__dirname, '..');
  const out = path.join(root, 'dist', 'sidecar.js');
  const r = spawnSync(process.execPath, [path.join(root, 'esbuild.mjs')], { cwd: root, stdio: 'ignore' });
  if (r.status !== 0 || !fs.existsSync(out)) throw new Error('building dist/sidecar.js failed: run node esbuild.mjs');
  return out;
}

async function defaults(a: Args): Promise<{ model: string; server: string; args: string[]; label: string }> {
  if (a.model && a.server) return { model: a.model, server: a.server, args: a.args ?? [], label: a.label ?? path.basename(a.model) };
  // Development machine: the tiny model and the cached CPU build (test fixtures; not bundled for --pack).
  const { ensureTinyModel } = await import('../test/fixtures/models');
  const { getLlamaBinaries } = await import('../test/harness/llamaBinaries');
  const model = a.model ?? (await ensureTinyModel());
  const server = a.server ?? (await getLlamaBinaries()).serverPath;
  return { model, server, args: a.args ?? ['--no-repack', '-t', '2', '-c', '2048', '--no-webui'], label: a.label ?? 'tiny random Qwen2 (F16, 4 layers)' };
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'cpu';
  return `${os.hostname()}: ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
}

async function runBench(a: Args): Promise<void> {
  const d = await defaults(a);
  const plan: ServerPlan = { binaryPath: d.server, modelPath: d.model, args: d.args };
  const sidecarScript = ensureSidecarBundle(a);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-sidecar-'));
  log(`model ${d.model}; llama-server ${d.server}; args ${d.args.join(' ')}`);
  const loadBefore = os.loadavg()[0];
  const tStart = performance.now();
  const client = await connectOrStartSidecar({ sidecarScript, stateDir, clientName: 'bench', startTimeoutMs: 60_000 });
  const daemonStartMs = performance.now() - tStart;
  const hand: SideFigures = { readyMs: [], requestMs: [], genTps: [] };
  const side: SideFigures = { readyMs: [], requestMs: [], genTps: [] };
  const statusRtt: number[] = [];
  try {
    for (let r = 0; r < a.rounds; r++) {
      // Alternate which side goes first, so that a warming page cache or a busy neighbour
      // does not favour one.
      const order = r % 2 === 0 ? ['hand', 'sidecar'] : ['sidecar', 'hand'];
      for (const o of order) {
        if (o === 'hand') await byHand(plan, a, hand, r);
        else await viaSidecar(client, plan, a, side, r);
      }
      log(`round ${r + 1}/${a.rounds}: ready hand ${hand.readyMs.at(-1)!.toFixed(0)} ms, sidecar ${side.readyMs.at(-1)!.toFixed(0)} ms`);
    }
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await client.status();
      statusRtt.push(performance.now() - t0);
    }
  } finally {
    await client.shutdown().catch(() => undefined);
    client.close();
    await sleep(500);
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  const fmt = (x: number, d = 1) => x.toFixed(d);
  const rows = [
    ['load → ready (median ms)', fmt(median(hand.readyMs), 0), fmt(median(side.readyMs), 0), fmt(median(side.readyMs) / median(hand.readyMs), 2)],
    [
      'load → ready (min ms)',
      fmt(Math.min(...hand.readyMs), 0),
      fmt(Math.min(...side.readyMs), 0),
      fmt(Math.min(...side.readyMs) / Math.min(...hand.readyMs), 2),
    ],
    [
      `/infill n_predict ${a.nPredict} (median ms)`,
      fmt(median(hand.requestMs)),
      fmt(median(side.requestMs)),
      fmt(median(side.requestMs) / median(hand.requestMs), 3),
    ],
    [
      `/infill n_predict ${a.nPredict} (p95 ms)`,
      fmt(pctile(hand.requestMs, 95)),
      fmt(pctile(side.requestMs, 95)),
      fmt(pctile(side.requestMs, 95) / pctile(hand.requestMs, 95), 3),
    ],
    [
      `/infill n_predict ${a.nPredict} (min ms)`,
      fmt(Math.min(...hand.requestMs)),
      fmt(Math.min(...side.requestMs)),
      fmt(Math.min(...side.requestMs) / Math.min(...hand.requestMs), 3),
    ],
    [`generation ${a.genTokens} tokens (median tok/s)`, fmt(median(hand.genTps)), fmt(median(side.genTps)), fmt(median(side.genTps) / median(hand.genTps), 3)],
    [
      `generation ${a.genTokens} tokens (best tok/s)`,
      fmt(Math.max(...hand.genTps)),
      fmt(Math.max(...side.genTps)),
      fmt(Math.max(...side.genTps) / Math.max(...hand.genTps), 3),
    ],
  ];
  const table = ['| | by hand | via sidecar | sidecar / hand |', '|---|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const extra = `Daemon cold start (spawn → connected): ${fmt(daemonStartMs, 0)} ms. Control round trip (\`status\` over the WebSocket): median ${fmt(median(statusRtt), 2)} ms, p95 ${fmt(pctile(statusRtt, 95), 2)} ms.`;
  const q = (x: string) => (/[\s"']/.test(x) ? `"${x.replace(/"/g, '\\"')}"` : x);
  const cmd = `npx tsx bench/sidecar.ts ${process.argv
    .slice(2)
    .filter((x) => x !== '--write')
    .map(q)
    .join(' ')}`.trim();
  const section = [
    `## Sidecar vs llama-server by hand (issue 3, \`bench/sidecar.ts\`)`,
    `- Date: ${new Date().toISOString().slice(0, 10)}. Machine: ${machine()} (1-min load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0].toFixed(1)} after: on a shared 2-core VM, read the min/best rows).`,
    `- Model: ${d.label}; llama-server ${path.basename(path.dirname(path.dirname(d.server)))} with \`${d.args.join(' ')}\`; ${a.rounds} rounds, ${a.requests} requests per side per round.`,
    `- Command: \`${cmd}\``,
    '',
    table,
    '',
    extra,
  ].join('\n');
  process.stdout.write(`\n${section}\n`);
  if (a.write) writeSection(section);
}

function writeSection(section: string): void {
  const file = path.resolve(__dirname, 'RESULTS.md');
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark and measurement results\n';
  const head = '## Sidecar vs llama-server by hand';
  const start = text.indexOf(head);
  let next = start < 0 ? -1 : text.indexOf('\n## ', start + head.length);
  if (start >= 0 && next < 0) next = text.length;
  const out = start < 0 ? `${text.trimEnd()}\n\n${section}\n` : `${text.slice(0, start)}${section}\n${text.slice(next).replace(/^\n*/, '\n')}`;
  fs.writeFileSync(file, out.trimEnd() + '\n');
  log(`wrote ${file}`);
}

/** For the GPU machine: a 32B-shaped Qwen2 model (Q4_K_M layout; weights are a sparse hole = zeros, which cost the GPU the same as any). */
async function writeShape(a: Args): Promise<void> {
  const { writeShapeModel } = await import('../src/core/models/synthetic/shapes');
  if (!a.vocab) throw new Error('--shape-model needs --vocab <llama.cpp>/models/ggml-vocab-qwen2.gguf');
  const t0 = Date.now();
  await writeShapeModel({ path: a.shapeModel!, shape: 'qwen2.5-coder-32b', quant: 'Q4_K_M', vocabPath: a.vocab });
  log(`wrote ${a.shapeModel} (${(fs.statSync(a.shapeModel!).size / 2 ** 30).toFixed(1)} GiB apparent) in ${Date.now() - t0} ms`);
}

/**
 * Everything a GPU machine without node needs, in one folder to carry (≈ 50 MB): this bench and
 * the daemon bundled, a node binary, the llama.cpp source (lib/packLlamaSource.ts; the Qwen2 vocab beside it),
 * and run-gpu.sh, which builds llama-server for CUDA sm_90, writes the 32B-shaped model and runs
 * the bench with full offload.
 */
async function pack(a: Args): Promise<void> {
  const root = path.resolve(__dirname, '..');
  const dir = a.pack!;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const esbuild = await import('esbuild');
  const common = {
    bundle: true,
    platform: 'node' as const,
    target: 'node20',
    format: 'cjs' as const,
    external: ['vscode', 'esbuild', '../test/*'],
    logLevel: 'warning' as const,
  };
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'bench', 'sidecar.ts')], outfile: path.join(dir, 'bench.js') });
  await esbuild.build({ ...common, entryPoints: [path.join(root, 'src', 'daemon', 'main.ts')], outfile: path.join(dir, 'sidecar.js') });
  log('bundled bench.js and sidecar.js');
  // node: this machine's (glibc, libstdc++ only), gzip'd.
  const gz = spawnSync('sh', ['-c', `gzip -6 -c "${process.execPath}" > "${path.join(dir, 'node.gz')}"`]);
  if (gz.status !== 0) throw new Error('gzip of the node binary failed');
  const { ensureLlamaSource } = await import('../src/daemon/installer/llamaSource');
  const { packLlamaSource } = await import('./lib/packLlamaSource');
  const src = await ensureLlamaSource();
  await packLlamaSource(path.join(dir, 'llama-src.tar.xz'), { topDir: path.basename(src.srcDir) });
  fs.copyFileSync(path.join(src.srcDir, 'models', 'ggml-vocab-qwen2.gguf'), path.join(dir, 'ggml-vocab-qwen2.gguf'));
  fs.writeFileSync(path.join(dir, 'run-gpu.sh'), GPU_SCRIPT(path.basename(src.srcDir)), { mode: 0o755 });
  const size = fs.readdirSync(dir).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
  log(`packed ${dir}: ${(size / 2 ** 20).toFixed(1)} MB (${fs.readdirSync(dir).join(', ')})`);
}

const GPU_SCRIPT = (srcName: string) => `#!/usr/bin/env bash
# Written by bench/sidecar.ts --pack. On a CUDA machine without node: builds llama-server for
# sm_90, writes a 32B-shaped Q4_K_M model, and compares generation tok/s through the Strata
# sidecar with the same llama-server command started by hand (goal: >= 0.98x).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=\${STRATA_BENCH_WORK:-/tmp/strata-bench-gpu}
mkdir -p "$work"
[ -x "$work/node" ] || { gunzip -c "$here/node.gz" > "$work/node"; chmod +x "$work/node"; }
"$work/node" --version
if [ ! -x "$work/build/bin/llama-server" ]; then
  tar -C "$work" -xJf "$here/llama-src.tar.xz"
  cmake -S "$work/${srcName}" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \\
    -DGGML_RPC=ON -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$work/cmake.log" 2>&1
  cmake --build "$work/build" -j"$(nproc)" --target llama-server >>"$work/cmake.log" 2>&1
fi
"$work/build/bin/llama-server" --list-devices
model="$work/qwen2.5-coder-32b-shape-Q4_K_M.gguf"
[ -f "$model" ] || "$work/node" "$here/bench.js" --shape-model "$model" --vocab "$here/ggml-vocab-qwen2.gguf"
out=\${OUT:-$work}
"$work/node" "$here/bench.js" --sidecar "$here/sidecar.js" --model "$model" --server "$work/build/bin/llama-server" \\
  --args "-ngl 99 -fa on -c 4096 --no-webui" --rounds \${ROUNDS:-2} --requests \${REQUESTS:-10} --n-predict 16 --gen-tokens \${GEN_TOKENS:-256} \\
  --label "32B-shaped Qwen2 (64 layers, 5120 embd, Q4_K_M layout, zero weights)" | tee "$out/sidecar-gpu.md"
`;

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.pack) return pack(a);
  if (a.shapeModel) return writeShape(a);
  return runBench(a);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`[bench] ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
