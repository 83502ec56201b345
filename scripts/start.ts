// `npm start`: from a fresh clone (after `npm install`), shows Strata working end to end.
// Builds the extension, ensures llama-server (cached llama.cpp build), ensures a model, starts
// llama-server on loopback with a fresh API key, writes the connection file the extension reads,
// and opens Strata in a real VS Code: desktop `code` when it is on PATH, else code-server.
// Ctrl+C stops everything it started.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { defaultConnectionFile, removeServerConnection, writeServerConnection } from '../src/core/llama/serverConnection';
import { ensureTinyModel } from '../test/fixtures/models';
import { startCodeServer } from '../test/harness/codeServer';
import { getLlamaBinaries } from '../test/harness/llamaBinaries';
import { startLlamaServer } from '../test/harness/llamaServer';

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
  step('building the extension (esbuild)');
  execFileSync(process.execPath, [path.join(root, 'esbuild.mjs')], { cwd: root, stdio: 'inherit' });

  step('ensuring llama-server (first run builds llama.cpp from source: about 4 minutes on 2 cores; cached after)');
  const bins = await getLlamaBinaries();
  step(`llama-server: ${bins.serverPath} (llama.cpp ${bins.commit})`);

  let model = process.env.STRATA_MODEL;
  if (model) {
    if (!fs.existsSync(model)) throw new Error(`STRATA_MODEL=${model} does not exist: point it at a GGUF file or unset it to use the generated test model.`);
  } else {
    model = await ensureTinyModel();
    const bar = '!'.repeat(78);
    process.stdout.write(`\n${bar}\n!! No model configured (set STRATA_MODEL=/path/to/model.gguf), and no model hub is reachable:\n!! using the GENERATED TINY TEST MODEL with RANDOM WEIGHTS. Its completions are gibberish;\n!! they show the pipeline works, not what a real coder model writes.\n${bar}\n\n`);
  }
  step(`model: ${model}`);

  step('starting llama-server on 127.0.0.1 with a fresh API key');
  const server = await startLlamaServer({ model, ctx: 4096, extraArgs: ['--cache-reuse', '256'] });
  const connFile = defaultConnectionFile();
  writeServerConnection({ url: server.url, apiKey: server.apiKey, model, pid: server.pid }, connFile);
  step(`llama-server ready at ${server.url} (pid ${server.pid}); connection file ${connFile}`);

  const cleanups: (() => Promise<void>)[] = [async () => removeServerConnection(connFile), () => server.stop()];
  const shutdown = async (code: number) => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  const workspace = sampleWorkspace();
  if (onPath('code') && !process.env.STRATA_START_CODE_SERVER) {
    step('opening desktop VS Code with the extension under development');
    execFileSync('code', ['--new-window', '--extensionDevelopmentPath', root, workspace], { stdio: 'inherit' });
    step(`VS Code is open on ${workspace}. Type in fib.py to see ghost text. Ctrl+C here stops llama-server.`);
  } else {
    step('no `code` on PATH: starting code-server (first run installs it from npm into the cache)');
    const cs = await startCodeServer({ workspaceDir: workspace, extensionDevelopmentPaths: [root], env: { STRATA_STATE_DIR: path.dirname(connFile) }, settings: { 'chat.disableAIFeatures': false } });
    cleanups.push(() => cs.stop());
    step(`ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    process.stdout.write(`\n  Open ${cs.url}?folder=${encodeURIComponent(workspace)} in a browser, open fib.py and type: ghost text comes from the local llama-server.\n  Ctrl+C stops code-server and llama-server.\n\n`);
  }
  await new Promise(() => undefined);
}

main().catch((e: Error) => {
  process.stderr.write(`[strata] ${e.message}\n`);
  process.exit(1);
});
