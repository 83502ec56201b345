import { InfillRequest, InfillResponse, LlamaClient } from '../llama/client';
import { isConnectionLost } from '../llama/connectionErrors';
import { CompletionSettings } from './completionSettings';
import { FimContext } from './fimContext';
import { RequestKind } from './inFlight';
import { postProcessCompletion } from './postProcess';

// The /infill request for a FIM context, and its sending: streamed, stopped as soon as the
// suggestion is complete, and asked once more when a kept-alive connection turns out stale.

/** Smallest run of cached tokens llama-server may shift into place (llama.vscode: 256). */
const CACHE_REUSE_MIN = 256;

export function buildInfillRequest(ctx: FimContext, kind: RequestKind, s: CompletionSettings, inputExtra: InfillRequest['input_extra']): InfillRequest {
  const req: InfillRequest = {
    input_prefix: ctx.inputPrefix,
    input_suffix: ctx.inputSuffix,
    input_extra: inputExtra,
    prompt: ctx.prompt,
    n_predict: kind === 'warm-up' ? 0 : s.maxTokens,
    t_max_prompt_ms: 500,
    t_max_predict_ms: s.maxPredictMs,
    ...(s.reuse.serverCache ? { cache_prompt: true, n_cache_reuse: CACHE_REUSE_MIN } : {}),
    // Code wants the likeliest tokens: top-k/top-p, optionally the infill sampler, then
    // temperature 0 (argmax: repeatable, so a remembered answer is the answer).
    samplers: s.infillSampler ? ['top_k', 'top_p', 'infill', 'temperature'] : ['top_k', 'top_p', 'temperature'],
    top_k: 40,
    top_p: 0.99,
    temperature: 0,
    // 'stop' marks the final event of the stream.
    response_fields: ['content', 'stop', 'timings', 'tokens_cached', 'truncated', 'stop_type'],
  };
  if (ctx.multiLine && ctx.indent !== undefined) req.n_indent = ctx.indent;
  // One line wanted: the server stops at the line break instead of generating maxTokens.
  if (!ctx.multiLine && kind !== 'warm-up') req.stop = ['\n'];
  return req;
}

/**
 * Streams the request. An abort frees the server slot at the next token, and generation stops
 * once the suggestion is complete (end of its block, or maxLines). `meter` collects the
 * client's main-thread time.
 */
export async function sendInfill(
  client: LlamaClient,
  req: InfillRequest,
  ctx: FimContext,
  s: CompletionSettings,
  signal: AbortSignal,
  meter: { cpuMs: number; clock: () => number },
  log: (level: 'debug', msg: string) => void,
): Promise<InfillResponse> {
  let seenLines = 1;
  const onText =
    req.n_predict === 0
      ? undefined
      : (text: string): boolean => {
          const lines = countLines(text);
          if (lines === seenLines) return false;
          seenLines = lines;
          return blockComplete(text, ctx, s.maxLines);
        };
  try {
    return await client.infillStream(req, signal, onText, meter); // runs synchronously up to the send
  } catch (e) {
    // A kept-alive connection the server closed as we reused it (a race undici does not retry
    // for POST): the server is fine, ask once more.
    if (signal.aborted || !isConnectionLost(e)) throw e;
    log('debug', `retrying a completion on a fresh connection: ${describeError(e)}`);
    return client.infillStream(req, signal, onText, meter);
  }
}

function countLines(s: string): number {
  let n = 1;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/** Whether the complete lines of a partial answer already make the whole suggestion. */
function blockComplete(text: string, ctx: FimContext, maxLines: number): boolean {
  const complete = text.slice(0, text.lastIndexOf('\n')).replace(/(\n[ \t]*)+$/, '');
  const lines = countLines(complete);
  if (lines >= maxLines) return true;
  const kept = postProcessCompletion(complete, ctx, { maxLines: maxLines + 1 });
  // Post-processing cut some of the complete lines: the block (or the line) has ended.
  return kept !== undefined && countLines(kept) < lines;
}

/** An error's message with its causes (fetch wraps the socket error in `cause`). */
export function describeError(e: unknown): string {
  const parts: string[] = [];
  let x = e as { message?: string; code?: string; cause?: unknown } | undefined;
  for (let i = 0; i < 4 && x; i++) {
    parts.push(`${x.message ?? String(x)}${x.code ? ` (${x.code})` : ''}`);
    x = x.cause as typeof x;
  }
  return parts.join(': ');
}
