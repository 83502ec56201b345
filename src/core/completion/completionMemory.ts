import * as crypto from 'crypto';
import { LruCache, TypeThroughCache } from './completionCache';
import { CompletionSettings } from './completionSettings';
import { CompletionDocument, Cursor } from './document';
import { FimContext } from './fimContext';

// What the engine remembers between keystrokes, so that it need not ask: the answer for each
// context it asked about (by hash, '' when nothing was worth showing), and the suggestions on
// screen, whose rest is served while the user types through them. The engine decides, from the
// reuse settings, whether to look.

export class CompletionMemory {
  private readonly answers = new LruCache<string>(256);
  private readonly shownSuggestions = new TypeThroughCache();

  /** The rest of a shown suggestion the user has typed the start of. */
  typedThrough(doc: CompletionDocument, cursor: Cursor): string | undefined {
    return this.shownSuggestions.lookup(doc, cursor)?.rest;
  }

  /** The answer remembered for this context key: text, '' (nothing to show), or undefined (never asked). */
  answer(key: string): string | undefined {
    return this.answers.get(key);
  }

  rememberAnswer(key: string, text: string | undefined): void {
    this.answers.set(key, text ?? '');
  }

  /** A suggestion now on screen at the cursor. */
  shown(doc: CompletionDocument, cursor: Cursor, ctx: FimContext, text: string): void {
    this.shownSuggestions.remember({
      uri: doc.uri,
      anchor: { ...cursor },
      linePrefix: doc.lineAt(cursor.line).slice(0, cursor.character),
      lineSuffix: ctx.lineSuffix,
      text,
    });
  }

  /** An accept ends every shown suggestion. */
  forgetShown(): void {
    this.shownSuggestions.clear();
  }

  clear(): void {
    this.answers.clear();
    this.shownSuggestions.clear();
  }
}

/** Hash of what decides the answer (extra context left out: it barely changes a completion). */
export function contextKey(ctx: FimContext, s: CompletionSettings): string {
  return crypto
    .createHash('sha1')
    .update(ctx.inputPrefix)
    .update('\u0001')
    .update(ctx.prompt)
    .update('\u0001')
    .update(ctx.inputSuffix)
    .update(`\u0001${s.maxTokens}/${s.maxLines}`)
    .digest('base64');
}
