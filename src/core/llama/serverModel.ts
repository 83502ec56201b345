import { LlamaClient, ServerProps } from './client';

// What a llama-server runs, from its /props, read once per server. Completion, chat, the
// language-model provider and the status report all need the model's name and context size;
// each used to ask /props itself (chat every 15 s). A server is one LlamaClient
// (ServerConnectionSource keeps one client per endpoint, and a restarted server has a new port
// and key), so the answer is remembered per client. Only answers are remembered: a server that
// is still loading (503) is asked again by the next caller.

/** The context size assumed when a server does not say (its /props failed or lacks n_ctx). */
export const FALLBACK_CONTEXT_SIZE = 4096;

export interface ServerModel {
  props: ServerProps;
  /** Model file the server loaded, as it reports it. */
  modelPath?: string;
  /** Tokens of context per slot, as the server reports it (undefined when it does not). */
  contextSize?: number;
}

const known = new WeakMap<LlamaClient, ServerModel>();
const reading = new WeakMap<LlamaClient, Promise<ServerModel>>();

/** The server's model, from memory after the first answer; throws what /props threw. */
export function readServerModel(client: LlamaClient, timeoutMs: number): Promise<ServerModel> {
  const k = known.get(client);
  if (k) return Promise.resolve(k);
  let p = reading.get(client);
  if (!p) {
    p = client
      .props(AbortSignal.timeout(timeoutMs))
      .then((props) => {
        const m: ServerModel = { props, modelPath: props.model_path, contextSize: props.default_generation_settings?.n_ctx };
        known.set(client, m);
        return m;
      })
      .finally(() => reading.delete(client));
    reading.set(client, p);
  }
  return p;
}

/** The model's context size, or the fallback when the server did not say. */
export function contextSizeOf(model: ServerModel | undefined): number {
  return model?.contextSize ?? FALLBACK_CONTEXT_SIZE;
}
