import { metaNumber, metaString, readGgufHeader } from '../../src/core/models/gguf/reader';
import { LlamaClient } from '../../src/core/llama/client';
import { startLlamaServer } from '../../test/harness/llamaServer';
import { ChatFigures, ChatResult, measureChat, pickQuestions, summarizeChat } from './chatQuality';
import { loadHoldout, pickPositions, QualityMode } from './holdout';
import { measureLines, ModeFigures } from './lineQuality';

// One quality run: a fresh real llama-server on the model, next-line and FIM middle-line figures
// through the completion engine, then chat answers through the chat path. Shared by
// bench/quality/run.ts (full size) and test/integration/modelQuality.test.ts (small, with floors).

export interface QualityOptions {
  model: string;
  /** Cursor positions per language group. */
  perGroup: number;
  /** Positions come in runs of this many consecutive lines. */
  run: number;
  /** Chat questions in all. */
  chat: number;
  seed: number;
  /** Server context; default: the model's trained context, at most 4096. */
  ctx?: number;
  serverArgs: string[];
  chatMaxTokens: number;
  /** The chat's default temperature (strata.chat.temperature). */
  chatTemperature: number;
  modes: QualityMode[];
  log?: (msg: string) => void;
}

export const DEFAULT_QUALITY_OPTIONS: Omit<QualityOptions, 'model'> = {
  perGroup: 100,
  run: 5,
  chat: 12,
  seed: 1,
  serverArgs: ['-t', '1'],
  chatMaxTokens: 384,
  chatTemperature: 0.2,
  modes: ['next-line', 'fim'],
};

export interface QualityReport {
  model: string;
  modelName?: string;
  ctx: number;
  options: Omit<QualityOptions, 'log'>;
  lines: ModeFigures[];
  chat: { all: ChatFigures; write: ChatFigures; explain: ChatFigures; results: ChatResult[] };
  wallSeconds: number;
}

/** The model's trained context length (GGUF <arch>.context_length), if it says. */
export async function trainedContext(model: string): Promise<{ ctx?: number; name?: string }> {
  const h = await readGgufHeader(model, { maxArrayItems: 0 });
  const arch = metaString(h, 'general.architecture');
  return { ctx: arch ? metaNumber(h, `${arch}.context_length`) : undefined, name: metaString(h, 'general.name') };
}

export async function measureQuality(o: QualityOptions): Promise<QualityReport> {
  const log = o.log ?? (() => undefined);
  const t0 = performance.now();
  const files = loadHoldout();
  const positions = pickPositions(files, o.perGroup, o.seed, o.run);
  const questions = pickQuestions(files, o.chat, o.seed);
  const info = await trainedContext(o.model);
  // Past its trained context a model writes noise: no bigger window than it learned.
  const ctx = o.ctx ?? Math.min(4096, info.ctx ?? 4096);
  // One slot; --seed makes the chat's sampling (temperature > 0) repeatable.
  const llama = await startLlamaServer({ model: o.model, ctx, extraArgs: ['-np', '1', '--seed', String(o.seed), ...o.serverArgs] });
  try {
    const client = new LlamaClient({ url: llama.url, apiKey: llama.apiKey });
    log(`${o.modes.join(' and ')}: ${positions.length} positions …`);
    const lines = await measureLines(client, positions, o.modes, {}, (n) => {
      if (n % 50 === 0) log(`  ${n}/${positions.length}`);
    });
    log(`chat: ${questions.length} questions …`);
    const results = await measureChat(client, llama, ctx, questions, { maxTokens: o.chatMaxTokens, temperature: o.chatTemperature, timeoutMs: 120_000 }, (n) =>
      log(`  ${n}/${questions.length}`),
    );
    const { log: _log, ...options } = o;
    void _log;
    return {
      model: o.model,
      modelName: info.name,
      ctx,
      options,
      lines,
      chat: {
        all: summarizeChat(results),
        write: summarizeChat(results.filter((r) => r.kind === 'write')),
        explain: summarizeChat(results.filter((r) => r.kind === 'explain')),
        results,
      },
      wallSeconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await llama.stop();
  }
}
