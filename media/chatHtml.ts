// The chat webview's HTML. Used by the extension (src/vscode/chat) and by the webview tests, so
// both load the very same page. No `vscode` import: the caller passes the webview's URIs.
//
// CSP: nothing is allowed by default; scripts only with this page's nonce (so no inline handlers
// and nothing injected runs), styles/fonts only from the extension's own files, no images, no
// connections, no frames, no forms.

export interface ChatHtmlOptions {
  /** webview.cspSource */
  cspSource: string;
  /** Fresh random nonce per page load (base64 or hex, at least 128 bits). */
  nonce: string;
  scriptUri: string;
  styleUri: string;
  /** Tests only: a script (host shim) run before the chat script, carrying the nonce. */
  testShim?: string;
}

const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function chatCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource}`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    "img-src 'none'",
    "connect-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

export function renderChatHtml(o: ChatHtmlOptions): string {
  if (!/^[A-Za-z0-9+/=_-]{16,}$/.test(o.nonce)) throw new Error('renderChatHtml: weak or malformed nonce');
  const nonce = attr(o.nonce);
  const shim = o.testShim ? `<script nonce="${nonce}">${o.testShim.replace(/<\/script/gi, '<\\/script')}</script>\n` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(chatCsp(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(o.styleUri)}">
<title>Strata Chat</title>
</head>
<body>
<div id="app">
  <div id="status" class="status" role="status" hidden></div>
  <main id="messages" role="log" aria-label="Conversation" aria-live="off" tabindex="0">
    <div id="welcome" class="welcome">
      <p class="welcome-title"><i class="codicon codicon-sparkle" aria-hidden="true"></i> Ask Strata about your code</p>
      <p>Select code and run <b>Strata: Ask About Selection</b>, or type a question below. Type <kbd>@</kbd> to attach a file.</p>
      <p class="muted">Answers come from the model on your machine; nothing leaves it.</p>
    </div>
  </main>
  <button id="jump" class="jump icon-button" type="button" hidden title="Scroll to the latest message" aria-label="Scroll to the latest message"><i class="codicon codicon-arrow-down" aria-hidden="true"></i></button>
  <footer id="composer">
    <div id="edit-banner" class="edit-banner" hidden>
      <span><i class="codicon codicon-edit" aria-hidden="true"></i> Editing your last message</span>
      <button id="cancel-edit" class="link-button" type="button">Cancel (Esc)</button>
    </div>
    <div id="chips" class="chips" role="list" aria-label="Attached context"></div>
    <div class="input-box">
      <textarea id="input" rows="1" placeholder="Ask about your code; @ attaches a file" aria-label="Message to Strata. Enter sends, Shift+Enter starts a new line." spellcheck="true"></textarea>
      <div class="input-actions">
        <button id="add-context" class="icon-button" type="button" title="Attach a file (@)" aria-label="Attach a file"><i class="codicon codicon-mention" aria-hidden="true"></i></button>
        <span id="model" class="model-label"></span>
        <button id="send" class="icon-button primary" type="button" title="Send (Enter)" aria-label="Send"><i class="codicon codicon-send" aria-hidden="true"></i></button>
        <button id="stop" class="icon-button primary" type="button" hidden title="Stop (Escape)" aria-label="Stop the answer"><i class="codicon codicon-debug-stop" aria-hidden="true"></i></button>
      </div>
    </div>
  </footer>
  <div id="announcer" class="sr-only" aria-live="polite"></div>
</div>
${shim}<script nonce="${nonce}" src="${attr(o.scriptUri)}"></script>
</body>
</html>
`;
}
