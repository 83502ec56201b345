import { isSafeHref } from './markdown';

// Allowlist sanitizer for the HTML that markdown-it produced from untrusted text. markdown-it with
// raw HTML off should never produce anything outside this list; this is the second wall, in case
// a parser bug or a plugin ever lets something through. HTML is parsed in an inert <template>
// (no scripts run, no images load there), cleaned, then moved into the live document.

const ALLOWED = new Set([
  'P',
  'BR',
  'HR',
  'H1',
  'H2',
  'H3',
  'H4',
  'H5',
  'H6',
  'BLOCKQUOTE',
  'UL',
  'OL',
  'LI',
  'PRE',
  'CODE',
  'EM',
  'STRONG',
  'S',
  'DEL',
  'A',
  'TABLE',
  'THEAD',
  'TBODY',
  'TR',
  'TH',
  'TD',
  'SPAN',
  'SUP',
  'SUB',
  'KBD',
]);

/** Elements dropped with everything inside them; any other unknown element is replaced by its text. */
const DROP_WITH_CONTENT = new Set(['SCRIPT', 'STYLE', 'TEMPLATE', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'NOSCRIPT', 'FRAME', 'FRAMESET']);

function cleanClass(el: Element): void {
  const keep = Array.from(el.classList).filter((c) => /^(hljs(-[a-z0-9_-]+)?|language-[A-Za-z0-9_+#.-]+|image-alt|[a-z_]+_)$/.test(c));
  if (keep.length) el.setAttribute('class', keep.join(' '));
  else el.removeAttribute('class');
}

function cleanElement(el: Element): void {
  for (const attr of Array.from(el.attributes)) {
    const name = attr.name.toLowerCase();
    if (name === 'class') continue;
    if (el.tagName === 'A' && name === 'href' && isSafeHref(attr.value)) continue;
    if (el.tagName === 'OL' && name === 'start' && /^\d{1,9}$/.test(attr.value)) continue;
    el.removeAttribute(attr.name);
  }
  if (el.hasAttribute('class')) cleanClass(el);
  if (el.tagName === 'A') {
    const href = el.getAttribute('href');
    if (href) {
      el.setAttribute('title', href);
      el.setAttribute('rel', 'noopener noreferrer');
    }
  }
}

export function sanitizeInto(root: DocumentFragment | Element): void {
  const walk = (parent: Node) => {
    let child = parent.firstChild;
    while (child) {
      const next = child.nextSibling;
      if (child.nodeType === Node.ELEMENT_NODE) {
        const el = child as Element;
        const tag = el.tagName.toUpperCase();
        if (DROP_WITH_CONTENT.has(tag) || el.namespaceURI !== 'http://www.w3.org/1999/xhtml') {
          el.remove();
        } else if (!ALLOWED.has(tag)) {
          el.replaceWith(document.createTextNode(el.textContent ?? ''));
        } else {
          cleanElement(el);
          walk(el);
        }
      } else if (child.nodeType !== Node.TEXT_NODE) {
        (child as ChildNode).remove(); // comments, processing instructions
      }
      child = next;
    }
  };
  walk(root);
}

/** Parses `html` inertly and returns a cleaned fragment ready to insert. */
export function sanitizedFragment(html: string): DocumentFragment {
  const t = document.createElement('template');
  t.innerHTML = html;
  const frag = t.content;
  sanitizeInto(frag);
  return document.adoptNode(frag);
}
