import { LlamaClient } from '../llama/client';
import { readServerModel } from '../llama/serverModel';
import { classifyError, CompletionStatus } from './completionStatus';
import { CompletionSettings } from './completionSettings';

// Once per server (client): the model's context size (its /props, read once for the whole
// window) and whether it can fill in the middle at all (an empty /infill: llama-server refuses
// with 501 when the vocabulary lacks FIM tokens, which /props does not say).

/** llama-server's default n_batch; /infill reserves it for prefix + suffix. Not in /props. */
const ASSUMED_N_BATCH = 2048;

interface ModelInfo {
  client: LlamaClient;
  checked: boolean;
  checking?: Promise<void>;
  nCtx?: number;
  modelPath?: string;
  fim?: boolean;
}

export class ModelProbe {
  private model?: ModelInfo;

  constructor(
    private readonly status: CompletionStatus,
    private readonly log: (level: 'debug' | 'info' | 'warn', msg: string) => void,
  ) {}

  /** Probes `client` unless it was; `onNewServer` runs first when it is another server than the last. */
  async check(client: LlamaClient, s: CompletionSettings, onNewServer: () => void): Promise<void> {
    if (this.model?.client !== client) {
      this.model = { client, checked: false };
      onNewServer();
    }
    const m = this.model;
    if (m.checked) return;
    m.checking ??= (async () => {
      try {
        const limit = Math.min(10_000, s.requestTimeoutMs);
        const model = await readServerModel(client, limit);
        m.nCtx = model.contextSize;
        m.modelPath = model.modelPath;
        await client.infill(
          { input_prefix: '', input_suffix: '', prompt: '', n_predict: 0, cache_prompt: true, response_fields: ['content'] },
          AbortSignal.timeout(limit),
        );
        m.fim = true;
        m.checked = true;
        this.log('info', `completion model ${m.modelPath ?? '?'}: fill-in-the-middle supported, context ${m.nCtx ?? '?'} tokens per slot`);
      } catch (e) {
        const c = classifyError(e);
        if (c.kind === 'no-fim') {
          m.fim = false;
          m.checked = true;
          this.log('warn', `completion model ${m.modelPath ?? '?'}: ${c.message}`);
        }
        if (c.kind !== 'aborted') this.status.failed(c.kind, c.message);
      } finally {
        m.checking = undefined;
      }
    })();
    await m.checking;
  }

  /** Checked, and able to fill in the middle. */
  get usable(): boolean {
    return !!this.model?.checked && this.model.fim !== false;
  }

  /** Whether the model in use was found without FIM support. */
  get fimUnsupported(): boolean {
    return this.model?.fim === false;
  }

  /** A completion request was refused for want of FIM tokens (the model changed behind the same server). */
  noFim(): void {
    if (this.model) this.model.fim = false;
  }

  /** Tokens of extra context the server keeps: its slot context minus what /infill reserves. */
  extraBudget(s: CompletionSettings): number {
    const nCtx = this.model?.nCtx;
    if (!nCtx) return 0;
    return Math.max(0, Math.min(s.extraTokens, nCtx - ASSUMED_N_BATCH - 2 * s.maxTokens - 16));
  }
}
