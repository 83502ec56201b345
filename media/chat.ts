// Chat webview script. The chat panel is tracked by the chat issue; this file exists so the
// webview bundle is part of the build from the start.
export {};
