import * as vscode from 'vscode';
import { CompletionSettings, DEFAULT_COMPLETION_SETTINGS } from '../core/completion/completionSettings';
import { ChatSettings, chatSettings } from './chat/settings';
import { StrataSettings, strataSettings } from './workspaceTrust';

// One typed, immutable snapshot of the `strata.*` settings that the window reads while the user
// types or chats, built once per configuration change (and when the workspace becomes trusted,
// which changes what Restricted Mode holds back), so that a keystroke reads no setting at all.
// Reads go through strataSettings() (workspaceTrust.ts). Which changes need a restart or a
// re-plan is listed in restartSettings.ts.

export interface CompletionConfig {
  /** strata.completion.enabled, the window-wide switch (a language's own override: enabledFor). */
  readonly enabled: boolean;
  /** 'automatic': as you type; 'manual': only on the trigger key (Alt+\) or command. */
  readonly triggerMode: 'automatic' | 'manual';
  readonly debounceMs: number;
  /** What the engine uses (src/core/completion). */
  readonly engine: Readonly<CompletionSettings>;
}

export interface StrataConfig {
  readonly completion: CompletionConfig;
  /** `strata.chat.*` (src/vscode/chat/settings.ts reads them). */
  readonly chat: Readonly<ChatSettings>;
  /** strata.server.connectionFile: "that server", never the sidecar's. */
  readonly connectionFile: string | undefined;
  /** Whether inline completions are on in documents of this language; read once per language and snapshot. */
  completionEnabledFor(languageId: string): boolean;
}

let snapshot: StrataConfig | undefined;
let watching: vscode.Disposable | undefined;
/** A new snapshot, and the change event that made it (none when the workspace became trusted). */
export interface StrataConfigChange {
  config: StrataConfig;
  event?: vscode.ConfigurationChangeEvent;
}

const changed = new vscode.EventEmitter<StrataConfigChange>();

/** The current snapshot. */
export function strataConfig(): StrataConfig {
  watch();
  return (snapshot ??= readStrataConfig());
}

/** Fires with the new snapshot after a change to `strata.*` settings (or to the workspace's trust). */
export const onDidChangeStrataConfig: vscode.Event<StrataConfigChange> = (listener, thisArgs, disposables) => {
  watch();
  return changed.event(listener, thisArgs, disposables);
};

/** Registered first thing in activate(), so that every other listener of a change sees the new snapshot. */
function watch(): void {
  if (watching) return;
  const rebuild = (event?: vscode.ConfigurationChangeEvent) => {
    snapshot = readStrataConfig();
    changed.fire({ config: snapshot, event });
  };
  watching = vscode.Disposable.from(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('strata')) rebuild(e);
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => rebuild()),
  );
}

/** For activate(): starts following changes now, ahead of every feature's own listener. */
export function watchStrataConfig(): vscode.Disposable {
  watch();
  return {
    dispose: () => {
      watching?.dispose();
      watching = undefined;
      snapshot = undefined;
    },
  };
}

function readStrataConfig(): StrataConfig {
  const c = strataSettings('strata');
  const enabled = c.get<boolean>('completion.enabled', true) !== false;
  const perLanguage = new Map<string, boolean>();
  return deepFreeze({
    completion: {
      enabled,
      triggerMode: c.get<string>('completion.triggerMode', 'automatic') === 'manual' ? 'manual' : 'automatic',
      debounceMs: clampNumber(c.get<number>('completion.debounceMs', 150), 0, 5000, 150),
      engine: completionSettings(c),
    },
    chat: chatSettings(),
    connectionFile: c.get<string>('server.connectionFile', '') || undefined,
    completionEnabledFor(languageId: string): boolean {
      let on = perLanguage.get(languageId);
      if (on === undefined) perLanguage.set(languageId, (on = languageEnabled(languageId)));
      return on;
    },
  } satisfies StrataConfig);
}

function languageEnabled(languageId: string): boolean {
  const cfg = strataSettings('strata', { languageId });
  if (!cfg.get<boolean>('completion.enabled', true)) return false;
  // Like Copilot's map: a language's own entry wins over "*".
  const langs = cfg.get<Record<string, boolean>>('completion.languages', {}) ?? {};
  if (typeof langs[languageId] === 'boolean') return langs[languageId];
  return typeof langs['*'] === 'boolean' ? langs['*'] : true;
}

function completionSettings(c: StrataSettings): CompletionSettings {
  const d = DEFAULT_COMPLETION_SETTINGS;
  const n = (key: string, def: number, min: number, max: number) => clampNumber(c.get<number>(key, def), min, max, def);
  return {
    ...d,
    maxTokens: n('completion.maxTokens', d.maxTokens, 1, 1024),
    maxLines: n('completion.maxLines', d.maxLines, 1, 200),
    maxPredictMs: n('completion.maxPredictMs', d.maxPredictMs, 50, 60_000),
    infillSampler: c.get<boolean>('completion.infillSampler', d.infillSampler) === true,
    fim: {
      ...d.fim,
      prefixLines: n('completion.prefixLines', d.fim.prefixLines, 0, 4096),
      suffixLines: n('completion.suffixLines', d.fim.suffixLines, 0, 4096),
    },
    extra: {
      ...d.extra,
      maxChunks: n('completion.extraContext.chunks', d.extra.maxChunks, 0, 64),
      chunkLines: n('completion.extraContext.chunkLines', d.extra.chunkLines, 8, 512),
    },
  };
}

function clampNumber(v: unknown, min: number, max: number, def: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return def;
  return Math.min(max, Math.max(min, Math.round(v)));
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** The one reader of strata.completion.enabled for code that has no document (status items, commands). */
export function completionEnabled(languageId?: string): boolean {
  const cfg = strataConfig();
  return languageId ? cfg.completionEnabledFor(languageId) : cfg.completion.enabled;
}

export function connectionFileSetting(): string | undefined {
  return strataConfig().connectionFile;
}
