import * as crypto from 'crypto';
import * as vscode from 'vscode';
import { renderChatHtml } from '../../../media/chatHtml';
import { HostToWebview, parseFromWebview } from '../../core/chat/webviewProtocol';
import { ChatController, ChatViewPort } from './chatController';

// The chat webview view and its message bridge. Messages from the page are validated before the
// controller sees them; messages to it are dropped until the page says "ready" (it then receives
// the whole state, so nothing is lost).

export const CHAT_VIEW_ID = 'strata.chat';

export class ChatViewProvider implements vscode.WebviewViewProvider, ChatViewPort {
  private view?: vscode.WebviewView;
  private ready = false;
  private focusWhenReady = false;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly controller: ChatController,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const mediaRoot = vscode.Uri.joinPath(this.extensionUri, 'dist', 'media');
    view.webview.options = { enableScripts: true, enableCommandUris: false, enableForms: false, localResourceRoots: [mediaRoot] };
    view.webview.html = renderChatHtml({
      cspSource: view.webview.cspSource,
      nonce: crypto.randomBytes(18).toString('base64'),
      scriptUri: view.webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot, 'chat.js')).toString(),
      styleUri: view.webview.asWebviewUri(vscode.Uri.joinPath(mediaRoot, 'chat.css')).toString(),
    });
    const sub = view.webview.onDidReceiveMessage((raw: unknown) => {
      const m = parseFromWebview(raw);
      if (!m) {
        this.log.warn('chat: ignored a malformed message from the chat view');
        return;
      }
      if (m.type === 'ready') {
        this.ready = true;
        this.controller.attach(this);
      }
      this.controller.onMessage(m).catch((e: Error) => {
        this.log.error(`chat: ${m.type} failed: ${e.stack ?? e.message}`);
        void vscode.window.showErrorMessage(`Strata chat: ${e.message}`);
      });
      if (m.type === 'ready' && this.focusWhenReady) {
        this.focusWhenReady = false;
        this.post({ type: 'focusInput' });
      }
    });
    view.onDidDispose(() => {
      sub.dispose();
      if (this.view === view) {
        this.view = undefined;
        this.ready = false;
      }
    });
    this.controller.attach(this);
  }

  post(m: HostToWebview): void {
    if (!this.view || !this.ready) return;
    void this.view.webview.postMessage(m);
  }

  async reveal(focusInput: boolean): Promise<void> {
    if (this.view) this.view.show(!focusInput);
    else await vscode.commands.executeCommand(`${CHAT_VIEW_ID}.focus`);
    if (!focusInput) return;
    if (this.ready) this.post({ type: 'focusInput' });
    else this.focusWhenReady = true;
  }

  setDescription(text: string | undefined): void {
    if (this.view) this.view.description = text;
  }
}
