import { ServerPlan } from '../../core/protocol';
import { findServerFor } from './binary';
import { ModelPlanProvider, ModelSettingError, NoServerBinaryError, PlanContext, ResolvedBinary, ServerSettings, settingsPlanProvider } from './plan';
import { readServerSettings } from './settings';
import { Problem } from './statusView';

// What this window wants to run: its settings read once per change, the plan its
// ModelPlanProvider makes from them, and the llama-server that plan names (or, with no model, the
// one that would run, for the status report). A plan that cannot be made is a Problem in one
// sentence, never a throw.

export const NO_MODEL_MESSAGE = 'No model chosen: pick one that fits this machine with "Strata: Switch Model" (it sets "strata.model.path").';

export class WindowPlan {
  settings: ServerSettings = readServerSettings();
  plan?: ServerPlan;
  binary?: ResolvedBinary;

  constructor(
    private readonly stateDir: string,
    private provider: ModelPlanProvider = settingsPlanProvider,
  ) {}

  setProvider(provider: ModelPlanProvider): void {
    this.provider = provider;
  }

  /** Re-reads the settings and plans again; undefined when there is a plan, else what keeps it from being made. */
  async refresh(): Promise<Problem | undefined> {
    this.settings = readServerSettings();
    const settings = this.settings;
    let resolved: ResolvedBinary | undefined;
    const ctx: PlanContext = {
      settings,
      resolveBinary: (modelPath) => {
        const r = findServerFor(settings, modelPath, { stateDir: this.stateDir });
        if (!r.found) throw new NoServerBinaryError(r);
        resolved = r.found;
        return r.found;
      },
    };
    try {
      this.plan = await this.provider(ctx);
      if (this.plan) {
        this.binary = resolved?.path === this.plan.binaryPath ? resolved : { path: this.plan.binaryPath, kind: 'setting' };
        return undefined;
      }
      // No model: still say which llama-server would run, for the status report.
      this.binary = findServerFor(settings, undefined, { stateDir: this.stateDir }).found;
      return { kind: 'no-model', message: NO_MODEL_MESSAGE };
    } catch (e) {
      this.plan = undefined;
      if (e instanceof NoServerBinaryError) {
        this.binary = undefined;
        return { kind: 'no-binary', message: e.message };
      }
      if (e instanceof ModelSettingError) return { kind: 'bad-setting', message: e.message };
      return { kind: 'bad-setting', message: `Strata could not decide what to run: ${(e as Error).message}` };
    }
  }
}
