import * as http from 'http';
import { StringDecoder } from 'string_decoder';
import { ServerConnection } from './serverConnection';
import { readServerSentEvents, ServerSentEventParser } from './serverSentEvents';

// Typed client for the parts of llama-server's HTTP API that Strata uses. Node 20's global
// fetch keeps connections alive, which matters: a completion per keystroke must not pay a
// TCP handshake each time.

export interface InfillExtraChunk {
  filename: string;
  text: string;
}

export interface InfillRequest {
  input_prefix: string;
  input_suffix: string;
  input_extra?: InfillExtraChunk[];
  /** Text right before the cursor; tokenized apart from input_prefix and placed after it. */
  prompt?: string;
  /** 0: evaluate the prompt into the KV cache and generate nothing (warm-up). */
  n_predict: number;
  /** Accepted for llama.vscode compatibility; llama-server does not implement it yet. */
  t_max_prompt_ms?: number;
  t_max_predict_ms?: number;
  cache_prompt?: boolean;
  /** Smallest chunk of the cached prompt that may be reused by shifting it (--cache-reuse). */
  n_cache_reuse?: number;
  n_indent?: number;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  seed?: number;
  samplers?: string[];
  stop?: string[];
  /** Only these fields in the answer (smaller JSON to parse on the extension's thread). */
  response_fields?: string[];
}

export interface Timings {
  cache_n?: number;
  prompt_n: number;
  prompt_ms: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_second?: number;
}

export interface InfillResponse {
  content: string;
  stop_type?: string;
  tokens_cached?: number;
  truncated?: boolean;
  timings?: Timings;
}

export interface ServerProps {
  model_path?: string;
  total_slots?: number;
  default_generation_settings?: { n_ctx?: number };
  build_info?: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatDelta {
  content?: string;
  reasoning_content?: string;
}

/**
 * Where infillStream adds the time its event handling holds the calling thread, read on `clock`
 * (the handling is synchronous, so wall time across it is that thread's time).
 */
export interface InfillMeter {
  cpuMs: number;
  clock: () => number;
}

export class LlamaHttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(message);
    this.name = 'LlamaHttpError';
  }
}

/** The server answered, but not with what the API promises (a proxy, another program, a bug). */
export class LlamaProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LlamaProtocolError';
  }
}

/** Largest /infill answer read; a completion is a few hundred bytes. */
const MAX_INFILL_RESPONSE_BYTES = 1 << 20;

export class LlamaClient {
  constructor(private readonly conn: Pick<ServerConnection, 'url' | 'apiKey'>) {}

  get url(): string {
    return this.conn.url;
  }

  private headers(): Record<string, string> {
    return { 'Content-Type': 'application/json', Authorization: `Bearer ${this.conn.apiKey}` };
  }

  private async post(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    const res = await fetch(this.conn.url + path, { method: 'POST', headers: this.headers(), body: JSON.stringify(body), signal });
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw new LlamaHttpError(describeHttpError(path, res.status, text), res.status, text);
    }
    return res;
  }

  /** true when the model is loaded and the server accepts requests. */
  async health(signal?: AbortSignal): Promise<boolean> {
    try {
      const res = await fetch(this.conn.url + '/health', { signal });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async props(signal?: AbortSignal): Promise<ServerProps> {
    const res = await fetch(this.conn.url + '/props', { headers: this.headers(), signal });
    if (!res.ok) throw new LlamaHttpError(describeHttpError('/props', res.status, await res.text()), res.status, '');
    return (await res.json()) as ServerProps;
  }

  async infill(req: InfillRequest, signal?: AbortSignal): Promise<InfillResponse> {
    const res = await this.post('/infill', { ...req, stream: false }, signal);
    const text = await readLimited(res, MAX_INFILL_RESPONSE_BYTES, '/infill');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new LlamaProtocolError(
        `llama-server at ${this.conn.url} answered /infill with something that is not JSON (${JSON.stringify(text.slice(0, 60))}); check that the connection file points at llama-server.`,
      );
    }
    const r = parsed as Partial<InfillResponse> | null;
    if (!r || typeof r !== 'object' || typeof r.content !== 'string') {
      throw new LlamaProtocolError(
        `llama-server at ${this.conn.url} answered /infill without a "content" string; check that the connection file points at llama-server.`,
      );
    }
    return r as InfillResponse;
  }

  /**
   * /infill streamed: the same answer as infill(), but llama-server notices a closed connection
   * at its next token (a non-streamed request is only checked once a second), so aborting frees
   * the server slot at once. `onText` sees the text so far and may return true to stop early
   * (the connection is closed; the text so far is the answer).
   *
   * On node:http rather than fetch: this runs on every keystroke, and fetch's own setup costs
   * ~0.6 ms of main thread per request (p99 4 ms) against ~0.2 ms here.
   */
  async infillStream(req: InfillRequest, signal?: AbortSignal, onText?: (textSoFar: string) => boolean, meter?: InfillMeter): Promise<InfillResponse> {
    let content = '';
    let final: Partial<InfillResponse> | undefined;
    let events = 0;
    const bad = (what: string) =>
      new LlamaProtocolError(`llama-server at ${this.conn.url} answered /infill with ${what}; check that the connection file points at llama-server.`);
    const stopped = await this.postEvents(
      '/infill',
      { ...req, stream: true },
      signal,
      (data) => {
        let chunk: { content?: unknown; stop?: boolean; error?: { message?: string } } & Partial<InfillResponse>;
        try {
          chunk = JSON.parse(data);
        } catch {
          throw bad(`something that is not JSON (${JSON.stringify(data.slice(0, 60))})`);
        }
        if (chunk.error) throw new LlamaHttpError(`llama-server /infill failed: ${chunk.error.message ?? 'error'}`, 500, data);
        events++;
        if (typeof chunk.content === 'string') content += chunk.content;
        if (chunk.stop) {
          final = chunk;
          return true;
        }
        return onText?.(content) ?? false;
      },
      (n) => {
        if (n > MAX_INFILL_RESPONSE_BYTES) throw bad(`more than ${MAX_INFILL_RESPONSE_BYTES} bytes`);
      },
      meter,
    );
    if (final) return { content, stop_type: final.stop_type, timings: final.timings, tokens_cached: final.tokens_cached, truncated: final.truncated };
    if (stopped) return { content, stop_type: 'client' };
    if (events === 0) throw bad('an empty stream');
    return { content, stop_type: 'incomplete' };
  }

  /**
   * POSTs JSON and hands each server-sent event's data to `onEvent` until it returns true (then
   * the connection is closed: resolves true) or the stream ends (resolves false).
   */
  private postEvents(
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    onEvent: (data: string) => boolean,
    onBytes: (total: number) => void,
    meter?: InfillMeter,
  ): Promise<boolean> {
    const url = new URL(path, this.conn.url);
    if (url.protocol !== 'http:')
      return this.post(path, body, signal).then(() => {
        throw new LlamaProtocolError(`only http:// llama-server URLs are supported for completions (${this.conn.url})`);
      });
    const payload = JSON.stringify(body);
    return new Promise<boolean>((resolve, reject) => {
      let settled = false;
      const finish = (err: unknown, stopped = false) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(stopped);
      };
      const onAbort = () => {
        const reason = signal?.reason;
        const err =
          reason instanceof Error && reason.name === 'TimeoutError' ? reason : Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
        r.destroy();
        finish(err);
      };
      // A fresh loopback connection per stream: llama-server answers "Keep-Alive" but closes the
      // connection after a streamed answer, so a reused socket fails half the time ("socket hang
      // up"). Connecting over loopback costs a fraction of a millisecond, off the main thread.
      const r = http.request(
        url,
        {
          method: 'POST',
          agent: false,
          headers: { ...this.headers(), 'Content-Length': Buffer.byteLength(payload), Accept: 'text/event-stream', Connection: 'close' },
        },
        (res) => {
          const decoder = new StringDecoder('utf8');
          let total = 0;
          if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode >= 300) {
            let text = '';
            res.on('data', (b: Buffer) => {
              if (text.length < 65_536) text += decoder.write(b);
            });
            res.on('end', () => finish(new LlamaHttpError(describeHttpError(path, res.statusCode ?? 0, text), res.statusCode ?? 0, text)));
            res.on('error', (e) => finish(e));
            return;
          }
          const events = new ServerSentEventParser();
          res.on('data', (b: Buffer) => {
            if (settled) return;
            const c0 = meter ? meter.clock() : 0;
            try {
              total += b.length;
              onBytes(total);
              for (const data of events.push(decoder.write(b))) {
                if (onEvent(data)) {
                  r.destroy();
                  finish(undefined, true);
                  return;
                }
              }
            } catch (e) {
              r.destroy();
              finish(e);
            } finally {
              if (meter) meter.cpuMs += meter.clock() - c0;
            }
          });
          res.on('end', () => {
            try {
              const last = events.end();
              if (!settled && last !== undefined && onEvent(last)) return finish(undefined, true);
              finish(undefined, false);
            } catch (e) {
              finish(e);
            }
          });
          res.on('error', (e) => finish(e));
          res.on('aborted', () => finish(Object.assign(new Error('terminated: the server closed the stream'), { code: 'ECONNRESET' })));
        },
      );
      r.on('error', (e) => finish(e));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      r.end(payload);
    });
  }

  /** Token ids of `content` under the loaded model's tokenizer (no special tokens added). */
  async tokenize(content: string, signal?: AbortSignal): Promise<number[]> {
    const res = await this.post('/tokenize', { content, add_special: false }, signal);
    const r = (await res.json()) as { tokens?: unknown };
    if (!Array.isArray(r.tokens)) throw new LlamaProtocolError('llama-server answered /tokenize without a "tokens" array.');
    return r.tokens as number[];
  }

  /** Streams an OpenAI-compatible chat completion, yielding deltas as they arrive. */
  async *chatStream(messages: ChatMessage[], opts: { max_tokens?: number; temperature?: number } = {}, signal?: AbortSignal): AsyncGenerator<ChatDelta> {
    const res = await this.post('/v1/chat/completions', { messages, stream: true, ...opts }, signal);
    for await (const data of readServerSentEvents(res.body!)) {
      if (data === '[DONE]') return;
      const chunk = JSON.parse(data) as { choices?: { delta?: ChatDelta }[] };
      const delta = chunk.choices?.[0]?.delta;
      if (delta) yield delta;
    }
  }
}

function describeHttpError(path: string, status: number, body: string): string {
  if (status === 401) return `llama-server refused ${path}: wrong or missing API key (401). Restart the Strata server.`;
  let detail = body.slice(0, 300);
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } };
    if (parsed.error?.message) detail = parsed.error.message;
  } catch {
    /* not JSON */
  }
  return `llama-server ${path} failed (${status}): ${detail}`;
}

/** Reads a response body as text, giving up (and closing it) past `limit` bytes. */
async function readLimited(res: Response, limit: number, path: string): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    n += part.byteLength;
    if (n > limit) {
      await res.body.cancel().catch(() => undefined);
      throw new LlamaProtocolError(`llama-server's answer to ${path} is larger than ${limit} bytes; check that the connection file points at llama-server.`);
    }
    chunks.push(part);
  }
  return Buffer.concat(chunks).toString('utf8');
}
