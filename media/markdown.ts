import MarkdownIt from 'markdown-it';
import hljs from 'highlight.js/lib/common';

// Markdown for model output, which is untrusted. Three layers keep it inert:
//  1. markdown-it with raw HTML off: `<script>` in the text comes out as text;
//  2. links validated here (absolute http(s) only) and images never loaded (shown as their alt text);
//  3. the webview sanitizes the produced HTML against an allowlist before inserting it
//     (sanitize.ts), and its CSP runs only scripts carrying the page's nonce.

/** Code blocks larger than this are shown without highlighting (highlight.js is ~linear but slow on MBs). */
export const HIGHLIGHT_LIMIT = 100_000;

export function isSafeHref(url: string): boolean {
  return /^https?:\/\/[^\s/?#]+/i.test(url.trim());
}

const md = new MarkdownIt({
  html: false,
  linkify: true,
  typographer: false,
  breaks: false,
  highlight(code: string, lang: string): string {
    const name = (lang || '').trim().split(/\s+/)[0].toLowerCase();
    if (!name || code.length > HIGHLIGHT_LIMIT || !hljs.getLanguage(name)) return '';
    try {
      return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
    } catch {
      return '';
    }
  },
});

md.validateLink = isSafeHref;

// Images from model output would be remote requests (tracking) or data: payloads: show the alt text.
md.renderer.rules.image = (tokens, idx) => {
  const t = tokens[idx];
  const alt = t.children ? t.children.map((c) => c.content).join('') : t.content;
  return `<span class="image-alt">[image${alt ? ': ' + md.utils.escapeHtml(alt) : ''}]</span>`;
};

export function renderMarkdown(text: string): string {
  return md.render(text);
}

export function escapeHtml(text: string): string {
  return md.utils.escapeHtml(text);
}

const warmed = new Set<string>();

/**
 * highlight.js compiles a language's grammar on first use (20-130 ms for TypeScript, Java, SCSS).
 * Called when a fence opens, so the compile happens in idle time while the block streams, not in
 * the frame that closes it.
 */
export function warmLanguage(lang: string): void {
  const name = lang.trim().toLowerCase();
  if (!name || warmed.has(name) || !hljs.getLanguage(name)) return;
  warmed.add(name);
  const run = () => {
    try {
      hljs.highlight('', { language: name, ignoreIllegals: true });
    } catch {
      /* highlighting is optional */
    }
  };
  if (typeof requestIdleCallback === 'function') requestIdleCallback(run, { timeout: 1000 });
  else setTimeout(run, 0);
}

/** Names highlight.js knows, for the language label of a streaming block. */
export function knownLanguage(lang: string): boolean {
  return !!hljs.getLanguage(lang);
}
