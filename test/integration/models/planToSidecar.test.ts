import * as assert from 'assert';
import * as os from 'os';
import { planArgs } from '../../../src/core/models/planner/args';
import { machineFromProbe } from '../../../src/core/models/planner/devices';
import { serverFlagsOf } from '../../../src/core/models/planner/serverFlags';
import { planForFile } from '../../../src/core/models/switcher';
import { probeAccelerators } from '../../../src/core/native';
import { ensureTinyModel } from '../../fixtures/models';
import { getLlamaBinaries } from '../../harness/llamaBinaries';
import { cleanupStateDir, connectTestSidecar, makeStateDir } from '../../harness/sidecar';

// The planner's flags, as the plan provider hands them to the sidecar, load in the real
// llama-server and give it the context, slots and cache the plan says; then a switch to another
// planned model goes through the daemon like "Switch Model" does.

describe('planned flags through the sidecar', function () {
  this.timeout(180_000);
  let state: string;
  before(() => {
    state = makeStateDir();
  });
  after(async () => {
    await cleanupStateDir(state);
  });

  it('loads with the planned context and slots, then switches to a second planned model', async () => {
    const bins = await getLlamaBinaries();
    const machine = machineFromProbe(await probeAccelerators({ isolate: false }));
    const flags = await serverFlagsOf(bins.serverPath);
    const cfg = { directories: [], downloadDir: os.tmpdir(), custom: [], contextSize: 6144, kvCacheType: 'auto' as const, slots: 0 };
    const a = await ensureTinyModel();
    const b = await ensureTinyModel({ embd: 128, heads: 2, kvHeads: 1, ffn: 384 });
    const planA = await planForFile(a, machine, cfg, 'both');
    assert.strictEqual(planA.plan.verdict, 'fits');
    const serverPlan = (file: string, args: string[]) => ({
      binaryPath: bins.serverPath,
      modelPath: file,
      args: [...args, '-t', '2', '--no-repack', '--no-webui'],
    });

    const client = await connectTestSidecar(state);
    try {
      const st = await client.load(serverPlan(a, planArgs(planA.plan, flags)));
      assert.strictEqual(st.phase, 'ready');
      const props = (await (await fetch(`${st.endpoint!.url}/props`, { headers: { Authorization: `Bearer ${st.endpoint!.apiKey}` } })).json()) as {
        default_generation_settings?: { n_ctx?: number };
        total_slots?: number;
      };
      assert.strictEqual(props.total_slots, planA.plan.slots);
      assert.strictEqual(props.default_generation_settings?.n_ctx, planA.plan.ctx);

      const planB = await planForFile(b, machine, cfg, 'both');
      const sw = await client.switchModel(serverPlan(b, planArgs(planB.plan, flags)));
      assert.strictEqual(sw.phase, 'ready');
      assert.strictEqual(sw.plan?.modelPath, b);
    } finally {
      await client.unload().catch(() => undefined);
      client.close();
    }
  });
});
