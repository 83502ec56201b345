import * as vscode from 'vscode';
import { modelDisplayName } from '../../core/chat/conversation';
import { LlamaTokenCounter } from '../../core/chat/tokenCounter';
import { ChatMessage } from '../../core/llama/client';
import { contextSizeOf, readServerModel } from '../../core/llama/serverModel';
import { ServerConnectionSource } from '../serverConnectionSource';

// Offers the loaded local model to VS Code's own chat through the Language Model Chat Provider API
// (`vscode.lm.registerLanguageModelChatProvider`, final in VS Code 1.104). Strata's engine is
// ^1.100, whose typings lack that API, so the shapes used are declared here and the call is made
// only when the running VS Code has it. The package.json needs the matching contribution
// `languageModelChatProviders: [{ vendor: "strata", displayName: "Strata (local)" }]`.

export const LM_VENDOR = 'strata';

export interface LmChatInformation {
  id: string;
  name: string;
  family: string;
  version: string;
  maxInputTokens: number;
  maxOutputTokens: number;
  tooltip?: string;
  detail?: string;
  capabilities: { imageInput?: boolean; toolCalling?: boolean | number };
}

interface LmRequestMessage {
  role: number; // LanguageModelChatMessageRole: 1 user, 2 assistant, 3 system (proposed)
  content: readonly unknown[];
}

export interface LmProvider {
  onDidChangeLanguageModelChatInformation?: vscode.Event<void>;
  provideLanguageModelChatInformation(options: unknown, token: vscode.CancellationToken): Promise<LmChatInformation[]>;
  provideLanguageModelChatResponse(
    model: LmChatInformation,
    messages: readonly LmRequestMessage[],
    options: unknown,
    progress: vscode.Progress<unknown>,
    token: vscode.CancellationToken,
  ): Promise<void>;
  provideTokenCount(model: LmChatInformation, text: string | LmRequestMessage, token: vscode.CancellationToken): Promise<number>;
}

type Register = (vendor: string, provider: LmProvider) => vscode.Disposable;

function textOf(m: LmRequestMessage): string {
  return m.content
    .map((p) => (p && typeof p === 'object' && 'value' in p && typeof (p as { value: unknown }).value === 'string' ? (p as { value: string }).value : ''))
    .join('');
}

function toChatMessages(messages: readonly LmRequestMessage[]): ChatMessage[] {
  return messages.map((m) => ({ role: m.role === 2 ? 'assistant' : m.role === 3 ? 'system' : 'user', content: textOf(m) }));
}

/**
 * The provider: one model, the chat role's server. VS Code is told to ask again whenever that
 * server changes (a restart, another model, a model placed on a peer), whichever feed said so.
 */
export function languageModelProvider(source: ServerConnectionSource, TextPart: new (value: string) => unknown): LmProvider {
  let counter: { key: string; counter: LlamaTokenCounter } | undefined;
  const onChange: vscode.Event<void> = (listener, thisArgs, disposables) =>
    source.onDidChangeServer(
      (c) => {
        if (c.role === 'chat') listener.call(thisArgs);
      },
      undefined,
      disposables,
    );
  return {
    onDidChangeLanguageModelChatInformation: onChange,
    async provideLanguageModelChatInformation() {
      let conn;
      let client;
      try {
        ({ conn, client } = source.current('chat'));
      } catch {
        return []; // no server: no model to offer
      }
      const model = await readServerModel(client, 3000).catch(() => undefined);
      const name = modelDisplayName(model?.modelPath ?? conn.model) ?? 'local model';
      const ctx = contextSizeOf(model);
      return [
        {
          id: 'strata-local',
          name: `${name} (Strata)`,
          family: 'strata-llama.cpp',
          version: '1',
          maxInputTokens: Math.max(256, ctx - Math.min(2048, Math.floor(ctx / 4))),
          maxOutputTokens: Math.min(2048, Math.floor(ctx / 4)),
          tooltip: `Runs locally in llama-server at ${conn.url}`,
          detail: 'local',
          capabilities: { imageInput: false, toolCalling: false },
        },
      ];
    },
    async provideLanguageModelChatResponse(model, messages, _options, progress, token) {
      const { client } = source.current('chat');
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      try {
        for await (const d of client.chatStream(toChatMessages(messages), { max_tokens: model.maxOutputTokens }, abort.signal)) {
          if (d.content) progress.report(new TextPart(d.content));
        }
      } catch (e) {
        if (!abort.signal.aborted) throw e;
      } finally {
        sub.dispose();
      }
    },
    async provideTokenCount(_model, text) {
      const { conn } = source.current('chat');
      const key = conn.url + conn.apiKey;
      if (counter?.key !== key) counter = { key, counter: new LlamaTokenCounter(conn) };
      return counter.counter.count(typeof text === 'string' ? text : textOf(text));
    },
  };
}

/** Registers the provider when the API exists; returns undefined (and does nothing) otherwise. */
export function registerLanguageModelProvider(source: ServerConnectionSource, log: vscode.LogOutputChannel): vscode.Disposable | undefined {
  const register = (vscode.lm as unknown as { registerLanguageModelChatProvider?: Register }).registerLanguageModelChatProvider;
  const TextPart = (vscode as unknown as { LanguageModelTextPart?: new (value: string) => unknown }).LanguageModelTextPart;
  if (typeof register !== 'function' || typeof TextPart !== 'function') {
    log.info('chat: this VS Code has no language model provider API; Strata models are offered only in the Strata chat');
    return undefined;
  }
  const provider = languageModelProvider(source, TextPart);
  try {
    const d = register(LM_VENDOR, provider);
    log.info('chat: registered the local model as a VS Code language model provider');
    return d;
  } catch (e) {
    // e.g. the running VS Code wants the package.json contribution this build lacks.
    log.warn(`chat: could not register as a language model provider: ${(e as Error).message}`);
    return undefined;
  }
}
