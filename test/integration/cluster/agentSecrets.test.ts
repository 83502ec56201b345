import * as assert from 'assert';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ensureTinyModel, testModelsDir } from '../../fixtures/models';
import { getLlamaBinaries } from '../../harness/llamaBinaries';
import { allCmdlines, cmdlinesContaining, flagValue } from '../../harness/procCmdlines';
import { startProcess, waitFor } from '../../harness/processes';
import { newToken } from '../../../src/cluster/transport/peerHandshake';
import { bundlePeer } from './agents';

// Secrets off the command line on the peer (issue 13 item 4), with the real strata-peer bundle
// as separate processes on loopback: the agent, `strata-peer place` (a client holding the token),
// and the llama-server the agent places. Every process's /proc/<pid>/cmdline is read, as `ps`
// would show it to any user of the machine.

function runPeer(peerJs: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [peerJs, ...args], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

describe('cluster: no secret on a command line (strata-peer and its placed llama-server)', function () {
  this.timeout(300_000);
  if (process.platform !== 'linux') return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-agent-secrets-'));
  let peerJs = '';
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config') };
  delete baseEnv.STRATA_PEER_TOKEN;

  before(async () => {
    peerJs = await bundlePeer();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("the token travels in the environment, the placed server's API key in a 0600 file that is gone when the server stops", async () => {
    const bins = await getLlamaBinaries();
    const model = await ensureTinyModel();
    const token = newToken();
    const env = { ...baseEnv, STRATA_PEER_TOKEN: token };
    const agent = startProcess(
      process.execPath,
      [
        peerJs,
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--state-dir',
        path.join(dir, 'state'),
        '--rpc-server',
        bins.rpcServerPath,
        '--llama-server',
        bins.serverPath,
        '--models-dir',
        testModelsDir(),
        '--threads',
        '1',
      ],
      { env },
    );
    let place: ReturnType<typeof startProcess> | undefined;
    try {
      await waitFor('strata-peer ready', async () => (agent.logText().includes('strata-peer ready') ? true : undefined), { timeoutMs: 20_000, proc: agent });
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(agent.logText())![1]);
      place = startProcess(
        process.execPath,
        [peerJs, 'place', '--peer', `127.0.0.1:${port}`, '--role', 'fim', '--model', path.basename(model), '--', '-c', '256', '-t', '1', '--no-repack'],
        { env },
      );
      const placed = await waitFor(
        'the placed server',
        async () => {
          const m = /^(\{"role".*\})$/m.exec(place!.logText());
          return m ? (JSON.parse(m[1]) as { url: string; apiKey: string }) : undefined;
        },
        { timeoutMs: 120_000, proc: place },
      );

      // Nothing any user can list holds the token or the key...
      assert.deepStrictEqual(
        cmdlinesContaining(token).map((p) => p.argv.join(' ')),
        [],
      );
      assert.deepStrictEqual(
        cmdlinesContaining(placed.apiKey).map((p) => p.argv.join(' ')),
        [],
      );
      // ...while the llama-server that checks the key is there, pointed at its key file.
      const server = allCmdlines().find((p) => p.argv.includes('--api-key-file') && p.argv.includes(fs.realpathSync(model)));
      assert.ok(server, 'no placed llama-server with --api-key-file among the processes');
      const keyFile = flagValue(server, '--api-key-file')!;
      assert.strictEqual(fs.readFileSync(keyFile, 'utf8'), `${placed.apiKey}\n`);
      assert.strictEqual(fs.statSync(keyFile).mode & 0o777, 0o600);
      assert.strictEqual(fs.statSync(path.dirname(keyFile)).mode & 0o777, 0o700);
      assert.deepStrictEqual(fs.readdirSync(path.dirname(keyFile)), [path.basename(keyFile)]);

      // The key from the file is the one llama-server enforces.
      const body = JSON.stringify({ prompt: 'x', n_predict: 1 });
      const withKey = await fetch(`${placed.url}/completion`, { method: 'POST', headers: { Authorization: `Bearer ${placed.apiKey}` }, body });
      assert.strictEqual(withKey.status, 200, await withKey.text());
      const without = await fetch(`${placed.url}/completion`, { method: 'POST', body });
      assert.strictEqual(without.status, 401);

      // `place` stops its server on SIGTERM; the key file goes with it.
      await place.stop(10_000);
      await waitFor('the key file to be removed', async () => (fs.existsSync(path.dirname(keyFile)) ? undefined : true), { timeoutMs: 15_000 });
    } finally {
      await place?.stop(2000);
      await agent.stop(5000);
    }
  });

  it('refuses a token on the command line, in one sentence', async () => {
    const flag = await runPeer(peerJs, ['info', '--peer', '127.0.0.1:9', '--token', newToken()], baseEnv);
    assert.strictEqual(flag.code, 2, flag.stderr);
    assert.strictEqual(
      flag.stderr.trim(),
      'strata-peer: --token is not accepted because every user of this machine can read a command line: put the token in STRATA_PEER_TOKEN or in a 0600 file given with --token-file.',
    );
  });

  it('refuses a STRATA_PEER_TOKEN under 128 bits, in one sentence, and takes one of 128', async () => {
    const short = await runPeer(peerJs, ['serve', '--listen', '127.0.0.1:0', '--state-dir', path.join(dir, 'state2'), '--rpc-server', path.join(dir, 'none')], {
      ...baseEnv,
      STRATA_PEER_TOKEN: 'correct-horse-battery',
    });
    assert.strictEqual(short.code, 2, short.stderr);
    assert.match(
      short.stderr.trim(),
      /^strata-peer: STRATA_PEER_TOKEN carries at most 126 bits, fewer than the 128 a peer token needs: set it to a token from `strata-peer token` \(or `openssl rand -base64 32`\), or unset it to use the token file\.$/,
    );

    // 32 hex digits are 128 bits: enough.
    const hex = 'a3'.repeat(16);
    const ok = await runPeer(peerJs, ['token'], { ...baseEnv, STRATA_PEER_TOKEN: hex });
    assert.strictEqual(ok.code, 0, ok.stderr);
    assert.strictEqual(ok.stdout.trim(), hex);
  });
});
