import { strataSettings } from '../workspaceTrust';

// `strata.chat.*` settings, read when used so that changes apply to the next question.

export interface ChatSettings {
  maxTokens: number;
  temperature: number;
  includeActiveFile: boolean;
  systemPrompt: string | undefined;
}

export function chatSettings(): ChatSettings {
  const c = strataSettings('strata.chat');
  const sp = c.get<string>('systemPrompt', '').trim();
  return {
    maxTokens: Math.max(16, c.get<number>('maxTokens', 2048)),
    temperature: c.get<number>('temperature', 0.2),
    includeActiveFile: c.get<boolean>('includeActiveFile', true),
    systemPrompt: sp ? sp : undefined,
  };
}
