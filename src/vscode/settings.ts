import { CompletionSettings, DEFAULT_COMPLETION_SETTINGS } from '../core/completion/completionEngine';
import { strataSettings } from './workspaceTrust';

// One place that maps `strata.*` settings onto the core's plain settings objects.

export function completionEnabled(languageId?: string): boolean {
  const cfg = strataSettings('strata', languageId ? { languageId } : undefined);
  if (!cfg.get<boolean>('completion.enabled', true)) return false;
  if (!languageId) return true;
  // Like Copilot's map: a language's own entry wins over "*".
  const langs = cfg.get<Record<string, boolean>>('completion.languages', {}) ?? {};
  if (typeof langs[languageId] === 'boolean') return langs[languageId];
  return typeof langs['*'] === 'boolean' ? langs['*'] : true;
}

export function debounceMs(): number {
  return clampNumber(strataSettings('strata').get<number>('completion.debounceMs', 150), 0, 5000, 150);
}

/** 'automatic': as you type; 'manual': only on the trigger key (Alt+\) or command. */
export function completionTriggerMode(): 'automatic' | 'manual' {
  return strataSettings('strata').get<string>('completion.triggerMode', 'automatic') === 'manual' ? 'manual' : 'automatic';
}

export function completionSettings(): CompletionSettings {
  const c = strataSettings('strata');
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

export function connectionFileSetting(): string | undefined {
  const v = strataSettings('strata').get<string>('server.connectionFile', '');
  return v ? v : undefined;
}
