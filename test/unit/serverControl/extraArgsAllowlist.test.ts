import * as assert from 'assert';
import { checkPlacementArgs } from '../../../src/cluster/agent/placement';
import { checkServerFlags, ServerFlagError } from '../../../src/core/llama/serverFlagAllowlist';
import { DEFAULT_SERVER_SETTINGS, ModelSettingError, PlanContext, settingsPlanProvider } from '../../../src/vscode/serverControl/plan';

// `strata.server.extraArgs` (and the peer's placement flags) through the shared allowlist
// (issue 13): a workspace or a peer client must not get llama-server to load a model or a
// library from a path, write files, hand out the key or listen elsewhere. Each case is an attack
// through the real plan provider: before the allowlist, every one of them reached llama-server.

const MODEL = '/models/Qwen2.5-Coder-7B.Q4_K_M.gguf';
const ctx = (extraArgs: string[]): PlanContext => ({
  settings: { ...DEFAULT_SERVER_SETTINGS, modelPath: MODEL, extraArgs },
  resolveBinary: () => ({ path: '/opt/llama-server', kind: 'setting' }),
});

async function refused(extraArgs: string[]): Promise<string> {
  try {
    const plan = await settingsPlanProvider(ctx(extraArgs));
    assert.fail(`${JSON.stringify(extraArgs)} reached llama-server: ${JSON.stringify(plan?.args)}`);
  } catch (e) {
    if (!(e instanceof ModelSettingError)) throw e;
    return e.message;
  }
}

/** One sentence: says what is wrong and what to change, ends with a full stop, no second sentence. */
function assertOneActionableSentence(msg: string): void {
  assert.match(
    msg,
    /^"strata\.server\.extraArgs" has the llama-server flag ".+", which Strata does not pass on because .+: (remove it from the setting|write it as) .+\.$/,
    msg,
  );
  assert.ok(!/\.\s+[A-Z]/.test(msg), `more than one sentence: ${msg}`);
}

describe('strata.server.extraArgs allowlist', () => {
  const families: Record<string, string[][]> = {
    'model and download flags': [
      ['-m', '/tmp/evil.gguf'],
      ['--model', '/tmp/evil.gguf'],
      ['-md', '/tmp/evil.gguf'],
      ['--model-draft', 'x.gguf'],
      ['--mmproj', 'x.gguf'],
      ['--mmproj-url', 'http://evil/x'],
      ['-mu', 'http://evil/x.gguf'],
      ['--model-url', 'http://evil/x.gguf'],
      ['-hf', 'evil/repo'],
      ['-hfr', 'evil/repo'],
      ['--hf-repo', 'evil/repo'],
      ['-hff', 'x.gguf'],
      ['--hf-token', 'x'],
      ['--lora', '/tmp/x.gguf'],
      ['--control-vector', '/tmp/x.gguf'],
      ['--models-dir', '/tmp'],
    ],
    'network flags': [['--host', '0.0.0.0'], ['--port', '80'], ['--rpc', '10.0.0.5:50052'], ['--reuse-port'], ['--api-prefix', '/x']],
    'key flags': [
      ['--api-key', 'k'],
      ['--api-key-file', '/tmp/k'],
      ['--ssl-key-file', '/tmp/k'],
      ['--ssl-cert-file', '/tmp/c'],
    ],
    'flags that read or write files': [
      ['--log-file', '/home/u/.bashrc'],
      ['--slot-save-path', '/tmp'],
      ['--path', '/'],
      ['--chat-template-file', '/etc/shadow'],
      ['--grammar-file', '/tmp/g'],
      ['-lcs', '/tmp/c'],
      ['--lookup-cache-dynamic', '/tmp/c'],
      ['-f', '/tmp/p'],
      ['--system-prompt-file', '/tmp/p'],
    ],
    'other flags (endpoints, tools, exits)': [['--props'], ['--tools', 'all'], ['--slots'], ['--help'], ['--version'], ['--list-devices'], ['--prio', '3']],
  };
  for (const [family, cases] of Object.entries(families)) {
    it(`refuses ${family} in one actionable sentence`, async () => {
      for (const args of cases) {
        const msg = await refused(['-t', '2', ...args]);
        assert.ok(msg.includes(JSON.stringify(args[0])), `${msg} does not name ${args[0]}`);
        assertOneActionableSentence(msg);
      }
    });
  }

  it('refuses the --flag=value form of a refused flag, and underscore spellings llama.cpp reads as dashes', async () => {
    for (const a of [
      '--rpc=10.0.0.5:50052',
      '--log-file=/tmp/x',
      '--model=/tmp/evil.gguf',
      '--host=0.0.0.0',
      '--api-key=k',
      '--log_file',
      '--api_key',
      '--model_draft',
      '--slot_save_path',
    ]) {
      const msg = await refused([a, 'x']);
      assert.match(msg, /remove it from the setting/, msg);
      assertOneActionableSentence(msg);
    }
    assert.match(await refused(['--rpc=h:1']), /because it makes llama-server listen or connect elsewhere/);
    assert.match(await refused(['--log_file', '/tmp/x']), /because it reads or writes files/);
  });

  it('asks for two items when an allowed flag is written as --flag=value', async () => {
    const msg = await refused(['--ctx-size=4096']);
    assert.match(msg, /write it as "--ctx-size", "4096"\.$/);
    assertOneActionableSentence(msg);
  });

  it('does not let a value flag carry a flag past the check as its value', async () => {
    // -kvu is bare in llama.cpp: had it been treated as a value flag, "--rpc" would have been skipped here.
    assert.match(await refused(['-kvu', '--rpc', 'h:1']), /"--rpc"/);
    // -fa took no value before llama.cpp gave it on|off|auto: an old llama-server would read "--rpc" as a flag.
    assert.match(await refused(['-fa', '--rpc', 'h:1']), /"-fa".*value "--rpc" looks like a flag/);
    assert.match(await refused(['-t']), /"-t".*needs a value/);
    assert.match(await refused(['evil.gguf']), /"evil\.gguf".*not a flag/);
  });

  it("passes the flags that tune speed and memory, negative numbers included, after Strata's own", async () => {
    const extra = [
      '-fa',
      'on',
      '-t',
      '8',
      '--no-repack',
      '-ngl',
      '-1',
      '-ot',
      'exps=CPU',
      '--n-cpu-moe',
      '4',
      '--ctx_size',
      '4096',
      '-kvu',
      '--no-webui',
      '-lv',
      '4',
    ];
    const plan = await settingsPlanProvider(ctx(extra));
    assert.deepStrictEqual(plan?.args.slice(-extra.length), [
      '-fa',
      'on',
      '-t',
      '8',
      '--no-repack',
      '-ngl',
      '-1',
      '-ot',
      'exps=CPU',
      '--n-cpu-moe',
      '4',
      '--ctx-size',
      '4096',
      '-kvu',
      '--no-webui',
      '-lv',
      '4',
    ]);
  });

  it("is the peer agent's placement list too, with -md resolved inside the models folder", () => {
    const resolve = (n: string) => `/models/${n}`;
    assert.deepStrictEqual(checkPlacementArgs(['-c', '4096', '-md', 'draft.gguf', '-kvu'], resolve), ['-c', '4096', '-md', '/models/draft.gguf', '-kvu']);
    for (const bad of [['--rpc', 'h:1'], ['--log-file', '/tmp/x'], ['-m', 'x.gguf'], ['-kvu', '--host', '-c'], ['--host=0.0.0.0']]) {
      assert.throws(() => checkPlacementArgs(bad, resolve), /is not allowed in placement mode/, JSON.stringify(bad));
    }
    assert.throws(
      () => checkServerFlags(['-md', 'x.gguf']),
      (e: unknown) => e instanceof ServerFlagError && e.flag === '-md',
    );
  });
});
