// Model switch time (issue 6, item 7).
//   1. Switch through Strata: the sidecar's `switch` request from model A (ready) to model B,
//      until B answers ready; vs the same by hand: SIGTERM A, wait for it to exit, start B with
//      the same flags, poll /health every 10 ms until 200. Page cache warm (a warm-up round first).
//   2. Switch between two resident models: both llama-servers already loaded (what Strata does
//      when a FIM and a chat model both fit); "switching" is sending the next request to the
//      other one: time to its first token, vs the same request to the model already in use.
// Flags come from the planner (CPU here: this machine has no GPU). One server at a time in 1.
//
//   npx tsx bench/models-switch.ts [--rounds 5] [--model-a a.gguf --model-b b.gguf]

import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { machineFromProbe } from '../src/core/models/planner/devices';
import { planArgs } from '../src/core/models/planner/args';
import { serverFlagsOf } from '../src/core/models/planner/serverFlags';
import { planForFile } from '../src/core/models/switcher';
import { probeAccelerators } from '../src/core/native';
import { ServerPlan } from '../src/core/protocol';
import { writeSecretFile } from '../src/core/secretFile';
import { pickFreePort } from '../src/daemon/ports';
import { ensureTinyModel } from '../test/fixtures/models';
import { getLlamaBinaries } from '../test/harness/llamaBinaries';
import { cleanupStateDir, connectTestSidecar, makeStateDir } from '../test/harness/sidecar';

const argv = process.argv.slice(2);
const opt = (k: string) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : undefined;
};
const ROUNDS = Number(opt('--rounds') ?? 5);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Hand {
  pid: number;
  url: string;
  key: string;
  stop(): Promise<void>;
}

/** The plan's command started by hand; the key in a 0600 file (--api-key-file), as llamaProcess.ts gives it. */
async function startByHand(plan: ServerPlan): Promise<Hand> {
  const port = await pickFreePort();
  const key = crypto.randomBytes(8).toString('hex');
  const keyFile = writeSecretFile(key, { name: 'llama-server-api-key' });
  const child = spawn(plan.binaryPath, ['-m', plan.modelPath, '--host', '127.0.0.1', '--port', String(port), ...plan.args, '--api-key-file', keyFile.path], {
    stdio: 'ignore',
    detached: true,
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      /* gone */
    }
    await exited;
    keyFile.remove();
  };
  try {
    for (;;) {
      try {
        if ((await fetch(`${url}/health`)).status === 200) break;
      } catch {
        /* not listening yet */
      }
      if (child.exitCode !== null) throw new Error(`llama-server exited (${child.exitCode})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid: child.pid!, url, key, stop };
}

async function firstToken(url: string, key: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${url}/completion`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify({ prompt: 'def add(a, b):', n_predict: 1, cache_prompt: false }),
  });
  const body = await r.text();
  if (!r.ok) throw new Error(`${url}/completion answered ${r.status}: ${body.slice(0, 200)}`);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const bins = await getLlamaBinaries();
  const a = opt('--model-a') ?? (await ensureTinyModel());
  const b = opt('--model-b') ?? (await ensureTinyModel({ embd: 128, heads: 2, kvHeads: 1, ffn: 384 }));
  const machine = machineFromProbe(await probeAccelerators({ isolate: false }));
  const flags = await serverFlagsOf(bins.serverPath);
  const cfg = { directories: [], downloadDir: os.tmpdir(), custom: [], contextSize: 4096, kvCacheType: 'auto' as const, slots: 0 };
  const planFor = async (m: string): Promise<ServerPlan> => {
    const { plan } = await planForFile(m, machine, cfg, 'both');
    // CPU build on 2 cores: two threads, and no weight repacking (see DESIGN.md).
    return { binaryPath: bins.serverPath, modelPath: m, args: [...planArgs(plan, flags), '-t', '2', '--no-repack', '--no-webui'] };
  };
  const planA = await planFor(a);
  const planB = await planFor(b);
  console.log(
    `models: A ${path.basename(a)} (${(fs.statSync(a).size / 1e6).toFixed(0)} MB), B ${path.basename(b)} (${(fs.statSync(b).size / 1e6).toFixed(0)} MB)`,
  );
  console.log(`flags A: ${planA.args.join(' ')}`);

  // 1a. through the sidecar
  const state = makeStateDir();
  const client = await connectTestSidecar(state);
  const viaStrata: number[] = [];
  try {
    await client.load(planA);
    for (let i = 0; i <= ROUNDS; i++) {
      for (const next of [planB, planA]) {
        const t0 = performance.now();
        await client.switchModel(next);
        if (i > 0) viaStrata.push(performance.now() - t0);
      }
    }
  } finally {
    await client.unload().catch(() => undefined);
    await cleanupStateDir(state, [client]);
  }

  // 1b. by hand
  const byHand: number[] = [];
  let cur = await startByHand(planA);
  for (let i = 0; i <= ROUNDS; i++) {
    for (const next of [planB, planA]) {
      const t0 = performance.now();
      await cur.stop();
      cur = await startByHand(next);
      if (i > 0) byHand.push(performance.now() - t0);
    }
  }
  await cur.stop();

  // 2. two resident models
  const ra = await startByHand(planA);
  const rb = await startByHand(planB);
  const same: number[] = [];
  const other: number[] = [];
  try {
    await firstToken(ra.url, ra.key);
    await firstToken(rb.url, rb.key);
    for (let i = 0; i < ROUNDS * 2; i++) {
      same.push(await firstToken(ra.url, ra.key));
      other.push(await firstToken(rb.url, rb.key));
    }
  } finally {
    await ra.stop();
    await rb.stop();
  }

  const ms = (x: number) => `${x.toFixed(0)} ms`;
  console.log('');
  console.log('| measure | median | min | max | n |');
  console.log('|---|---|---|---|---|');
  const row = (label: string, xs: number[]) => console.log(`| ${label} | ${ms(median(xs))} | ${ms(Math.min(...xs))} | ${ms(Math.max(...xs))} | ${xs.length} |`);
  row('switch A↔B through Strata (sidecar `switch` → ready)', viaStrata);
  row('switch A↔B by hand (SIGTERM, wait, start, /health 200)', byHand);
  row('two resident: first token from the model in use', same);
  row('two resident: first token from the other model', other);
  console.log(
    `\nratio Strata / by hand: ${(median(viaStrata) / median(byHand)).toFixed(2)}; resident switch costs ${ms(median(other) - median(same))} over staying`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
