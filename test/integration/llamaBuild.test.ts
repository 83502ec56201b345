import * as assert from 'assert';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { LlamaBuild } from '../../src/daemon/installer/buildSpec';
import { ensureLlamaBuild } from '../../src/daemon/installer/llamaBuild';
import { PINNED_NODE_LLAMA_CPP } from '../../src/daemon/installer/llamaSource';

// The real thing: the pinned llama.cpp, built for the CPU into the per-user cache (honours
// STRATA_CACHE_DIR). The first run compiles for ~4 min on 2 cores; later runs find the build.

const run = promisify(execFile);

describe('llama.cpp CPU build from the pinned node-llama-cpp bundle', function () {
  this.timeout(30 * 60_000);
  let first: LlamaBuild;

  before(async () => {
    let lastTenth = -1;
    first = await ensureLlamaBuild({
      backend: 'cpu',
      onProgress: (p) => {
        const tenth = p.percent === undefined ? -2 : Math.floor(p.percent / 10);
        if (p.phase === 'build' && tenth === lastTenth) return;
        lastTenth = tenth;
        process.stderr.write(`      [llama.cpp] ${p.message}${p.percent !== undefined ? ` ${p.percent}%` : ''}\n`);
      },
    });
  });

  it('is keyed by the pinned commit', () => {
    assert.strictEqual(first.commit, PINNED_NODE_LLAMA_CPP.llamaCommit);
    assert.strictEqual(path.basename(first.buildDir), `build-${first.commit.slice(0, 12)}-cpu`);
  });

  it('llama-server runs and reports that commit', async () => {
    const { stdout, stderr } = await run(first.serverPath, ['--version'], { timeout: 30_000 });
    assert.match(`${stdout}${stderr}`, new RegExp(`commit ${first.commit.slice(0, 7)}\\b`));
  });

  it('ggml-rpc-server runs', async () => {
    assert.strictEqual(path.basename(first.rpcServerPath), process.platform === 'win32' ? 'ggml-rpc-server.exe' : 'ggml-rpc-server');
    const { stderr } = await run(first.rpcServerPath, ['--help'], { timeout: 30_000 });
    assert.match(stderr, /--port PORT/);
  });

  it('a second call returns fast without rebuilding', async () => {
    const stamp = path.join(first.buildDir, 'strata-build.json');
    const stampMtime = fs.statSync(stamp).mtimeMs;
    const serverMtime = fs.statSync(first.serverPath).mtimeMs;
    const t0 = process.hrtime.bigint();
    const again = await ensureLlamaBuild({ backend: 'cpu' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.strictEqual(again.built, false);
    assert.strictEqual(again.serverPath, first.serverPath);
    assert.ok(ms < 200, `cached lookup took ${ms.toFixed(1)} ms`);
    assert.strictEqual(fs.statSync(stamp).mtimeMs, stampMtime);
    assert.strictEqual(fs.statSync(first.serverPath).mtimeMs, serverMtime);
  });
});
