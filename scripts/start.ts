// `npm start`: from a fresh clone (after `npm install`), shows Strata working end to end.
// Builds the extension, ensures llama-server (cached llama.cpp build), ensures a model, starts
// the Strata sidecar daemon (the one the extension uses), then opens Strata in a real VS Code
// (desktop `code` when it is on PATH, else code-server) with settings that name the model and
// llama-server; the window asks the sidecar to load it, and this terminal shows the progress.
// Ctrl+C stops what it started (the sidecar stops once no other window uses it).
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { strataStateDir } from '../src/core/paths';
import { connectOrStartSidecar } from '../src/core/daemonClient';
import { ensureTrainedModel } from '../test/fixtures/models';
import { startCodeServer } from '../test/harness/codeServer';
import { getLlamaBinaries } from '../test/harness/llamaBinaries';

const root = path.resolve(__dirname, '..');

function step(msg: string): void {
  process.stdout.write(`[strata] ${msg}\n`);
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function sampleWorkspace(): string {
  const dir = path.join(os.tmpdir(), 'strata-sample-workspace');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'fib.py');
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n    return \n');
  }
  return dir;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  // Node and the OS packages first: installs them as root, else stops with one message.
  (await import('./prerequisites.mjs')).ensurePrerequisites('start');
  step('building the extension (esbuild)');
  execFileSync(process.execPath, [path.join(root, 'esbuild.mjs')], { cwd: root, stdio: 'inherit' });

  step('ensuring llama-server (first run builds llama.cpp from source: about 4 minutes on 2 cores; cached after)');
  const bins = await getLlamaBinaries();
  step(`llama-server: ${bins.serverPath} (llama.cpp ${bins.commit})`);

  let model = process.env.STRATA_MODEL ? path.resolve(process.env.STRATA_MODEL) : undefined;
  if (model) {
    if (!fs.existsSync(model)) throw new Error(`STRATA_MODEL=${model} does not exist: point it at a GGUF file or unset it to use the trained test model.`);
  } else {
    model = await ensureTrainedModel();
    const bar = '!'.repeat(78);
    process.stdout.write(
      `\n${bar}\n!! No model configured (set STRATA_MODEL=/path/to/model.gguf), and no model hub is reachable:\n!! using Strata's SMALL TRAINED TEST MODEL (28 M parameters, trained from scratch on permissive\n!! code; scripts/model/README.md). It writes plausible code in context but is no product model:\n!! point STRATA_MODEL at a real coder GGUF (e.g. Qwen2.5-Coder) to judge suggestions.\n${bar}\n\n`,
    );
  }
  step(`model: ${model}`);

  const stateDir = strataStateDir();
  step(`starting the Strata sidecar (state ${stateDir}); the VS Code window asks it for the model`);
  const client = await connectOrStartSidecar({
    sidecarScript: path.join(root, 'dist', 'sidecar.js'),
    stateDir,
    clientName: 'npm start',
    log: (m) => process.stdout.write(`[sidecar] ${m}\n`),
  });
  const daemon = client.lastKnownStatus?.daemon;
  step(`sidecar pid ${daemon?.pid}; logs: ${daemon?.logFile} and ${daemon?.serverLogFile}`);
  // The window decides the plan (the memory planner picks the flags); this terminal follows it.
  let lastTenth = -1;
  let lastPhase = '';
  client.on('progress', (p) => {
    const tenth = Math.floor((p.fraction ?? 0) * 10);
    if (p.kind === 'load' && tenth !== lastTenth) {
      lastTenth = tenth;
      step(`loading ${Math.round((p.fraction ?? 0) * 100)}%${p.stage ? ` (${p.stage})` : ''}`);
    }
  });
  client.on('status', (st) => {
    const sv = st.server;
    if (sv.phase === lastPhase) return;
    lastPhase = sv.phase;
    if (sv.phase === 'ready') step(`llama-server ready at ${sv.endpoint?.url} (pid ${sv.pid}): ${sv.plan?.binaryPath} ${sv.plan?.args.join(' ')}`);
    else if (sv.phase === 'failed') step(`llama-server failed: ${sv.error?.message}`);
    else if (sv.phase !== 'loading') step(`llama-server ${sv.phase}`);
  });

  const cleanups: (() => Promise<void>)[] = [
    async () => {
      // Stops llama-server and the sidecar unless another VS Code window still uses them.
      await client.shutdown({ whenIdle: true }).catch(() => undefined);
      client.close();
    },
  ];
  const shutdown = async (code: number) => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  const workspace = sampleWorkspace();
  if (onPath('code') && !process.env.STRATA_START_CODE_SERVER) {
    step('opening desktop VS Code with the extension under development');
    // Desktop VS Code keeps the user's settings: the model and server go through the environment
    // (the extension reads STRATA_MODEL / STRATA_LLAMA_SERVER when the settings are empty).
    execFileSync('code', ['--new-window', '--extensionDevelopmentPath', root, workspace], {
      stdio: 'inherit',
      env: { ...process.env, STRATA_MODEL: model, STRATA_LLAMA_SERVER: bins.serverPath, STRATA_STATE_DIR: stateDir },
    });
    step(`VS Code is open on ${workspace}. Type in fib.py to see ghost text. Ctrl+C here stops the sidecar once no window uses it.`);
  } else {
    step('no `code` on PATH: starting code-server (first run installs it from npm into the cache)');
    const cs = await startCodeServer({
      workspaceDir: workspace,
      extensionDevelopmentPaths: [root],
      env: { STRATA_STATE_DIR: stateDir },
      settings: { 'chat.disableAIFeatures': false, 'strata.model.path': model, 'strata.server.path': bins.serverPath },
    });
    cleanups.push(() => cs.stop());
    step(`ready in ${((Date.now() - t0) / 1000).toFixed(0)} s (code-server pid ${cs.pid})`);
    process.stdout.write(
      `\n  Open ${cs.url}?folder=${encodeURIComponent(workspace)} in a browser, open fib.py and type: ghost text comes from the sidecar's llama-server.\n  Ctrl+C stops code-server, and the sidecar with its llama-server once no other window uses them.\n\n`,
    );
  }
  await new Promise(() => undefined);
}

main().catch((e: Error) => {
  process.stderr.write(`[strata] ${e.message}\n`);
  process.exit(1);
});
