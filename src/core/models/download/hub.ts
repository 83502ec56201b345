// Hugging Face hub addressing. Files are fetched from "resolve" URLs, which answer with a redirect
// to a CDN and, for LFS files (every GGUF), headers giving the size and the SHA-256 (the LFS
// object id) before a byte is sent: what lets the downloader check disk space first and verify
// the bytes after. Mirrors (hf-mirror.com, a company proxy) serve the same paths under another
// endpoint.

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** The endpoint to use: the setting, else HF_ENDPOINT (what huggingface_hub honours), else the hub. */
export function hubEndpoint(setting?: string, env: NodeJS.ProcessEnv = process.env): string {
  const e = (setting?.trim() || env.HF_ENDPOINT?.trim() || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(e)) throw new Error(`The model download endpoint "${e}" is not an http(s) URL: fix "strata.models.hubEndpoint".`);
  return e;
}

export function resolveUrl(endpoint: string, repo: string, file: string, revision = 'main'): string {
  const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(file)}`;
}

/** The hub's hash header is a quoted SHA-256 for LFS files (a git SHA-1 for small ones: ignored). */
export function sha256FromEtag(etag: string | null | undefined): string | undefined {
  const v = etag?.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return v && /^[0-9a-f]{64}$/.test(v) ? v : undefined;
}
