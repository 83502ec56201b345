// Reading an official llama.cpp release's metadata (the GitHub releases API format: tag_name,
// assets[].name/browser_download_url/size/digest) and picking the archive for this OS, CPU and
// backend from its asset names. Pure but for fetchRelease; downloadLlamaServer.ts installs the pick.

import { LlamaDownloadError, networkCause } from './llamaDownloadError';

export const DEFAULT_RELEASE_API = 'https://api.github.com/repos/ggml-org/llama.cpp/releases/latest';

export interface ReleaseAsset {
  name: string;
  url: string;
  size?: number;
  /** Lower-case hex, from the asset's "digest": "sha256:<hex>". */
  sha256?: string;
}

export interface ReleaseInfo {
  tag: string;
  assets: ReleaseAsset[];
}

export function parseRelease(json: unknown, baseUrl?: string): ReleaseInfo {
  const j = json as { tag_name?: unknown; assets?: unknown };
  if (!j || typeof j.tag_name !== 'string' || !Array.isArray(j.assets)) {
    throw new LlamaDownloadError('RELEASE_METADATA', 'The llama.cpp release metadata has no tag_name or assets: check "strata.server.releaseUrl".');
  }
  const assets: ReleaseAsset[] = [];
  for (const a of j.assets as { name?: unknown; browser_download_url?: unknown; size?: unknown; digest?: unknown }[]) {
    if (typeof a?.name !== 'string' || typeof a.browser_download_url !== 'string') continue;
    const digest = typeof a.digest === 'string' ? /^sha256:([0-9a-fA-F]{64})$/.exec(a.digest)?.[1]?.toLowerCase() : undefined;
    assets.push({
      name: a.name,
      url: baseUrl ? new URL(a.browser_download_url, baseUrl).toString() : a.browser_download_url,
      ...(typeof a.size === 'number' ? { size: a.size } : {}),
      ...(digest ? { sha256: digest } : {}),
    });
  }
  return { tag: j.tag_name, assets };
}

export interface AssetFacts {
  tag: string;
  /** ubuntu | macos | win | other names llama.cpp may use. */
  os: string;
  /** '' for the default (CPU, or Metal on macOS arm64), else vulkan, cuda-12.4, hip-radeon, ... */
  variant: string;
  arch: string;
  kind: 'tar.gz' | 'zip';
  /** The llama.cpp backend it runs on. */
  backend: string;
}

/** "llama-b6100-bin-ubuntu-vulkan-x64.tar.gz" -> facts; undefined for other assets (cudart, sources). */
export function classifyAsset(name: string): AssetFacts | undefined {
  // Plain name characters only: the name comes from the release API's answer and must not carry a path.
  const m = /^llama-([\w.]+)-bin-([a-z0-9]+)-(?:([\w.-]+)-)?(x64|arm64|aarch64|x86_64)\.(zip|tar\.gz)$/.exec(name);
  if (!m) return undefined;
  const [, tag, osName, variant = '', arch, ext] = m;
  const v = variant === 'cpu' ? '' : variant;
  return {
    tag,
    os: osName,
    variant: v,
    arch: arch === 'aarch64' ? 'arm64' : arch === 'x86_64' ? 'x64' : arch,
    kind: ext as 'tar.gz' | 'zip',
    backend: backendOfVariant(osName, v, arch),
  };
}

export function backendOfVariant(osName: string, variant: string, arch: string): string {
  if (!variant) return osName === 'macos' && arch === 'arm64' ? 'metal' : 'cpu';
  if (variant.startsWith('cuda')) return 'cuda';
  if (variant.startsWith('hip') || variant.startsWith('rocm')) return 'hip';
  if (variant.startsWith('vulkan')) return 'vulkan';
  return variant.replace(/[^a-z0-9]+/gi, '-');
}

export function platformAssetOs(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'win' : platform === 'darwin' ? 'macos' : 'ubuntu';
}

export function platformAssetArch(arch: string = process.arch): string {
  return arch === 'arm64' ? 'arm64' : 'x64';
}

/** Assets for this platform, the preferred backend first, then GPU variants before CPU. */
export function assetsForPlatform(
  release: ReleaseInfo,
  opts: { platform?: NodeJS.Platform; arch?: string; prefer?: string[] } = {},
): (ReleaseAsset & { facts: AssetFacts })[] {
  const os_ = platformAssetOs(opts.platform);
  const arch = platformAssetArch(opts.arch);
  const prefer = opts.prefer ?? [];
  const rank = (f: AssetFacts): number => {
    const i = prefer.indexOf(f.backend);
    return i >= 0 ? i : prefer.length + (f.backend === 'cpu' ? 1 : 0);
  };
  return release.assets
    .map((a) => ({ ...a, facts: classifyAsset(a.name) }))
    .filter((a): a is ReleaseAsset & { facts: AssetFacts } => !!a.facts && a.facts.os === os_ && a.facts.arch === arch)
    .sort((a, b) => rank(a.facts) - rank(b.facts) || (a.facts.kind === 'tar.gz' ? -1 : 1));
}

export async function fetchRelease(url: string, opts: { signal?: AbortSignal; fetchImpl?: typeof fetch } = {}): Promise<ReleaseInfo> {
  const f = opts.fetchImpl ?? fetch;
  let res: Response;
  try {
    res = await f(url, { headers: { accept: 'application/vnd.github+json', 'user-agent': 'strata-coder' }, signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw new LlamaDownloadError('ABORTED', 'The llama-server download was cancelled.');
    // No answer at all (offline, DNS, refused): the caller offers a build instead.
    throw new LlamaDownloadError(
      'UNREACHABLE',
      `Cannot reach ${url} (${networkCause(e)}): check the network, or build llama-server instead ("Strata: Build llama-server for This Machine").`,
    );
  }
  if (!res.ok)
    throw new LlamaDownloadError('RELEASE_METADATA', `${url} answered HTTP ${res.status}: check "strata.server.releaseUrl", or build llama-server instead.`);
  let json: unknown;
  try {
    json = await res.json();
  } catch {
    throw new LlamaDownloadError('RELEASE_METADATA', `${url} did not return JSON release metadata: check "strata.server.releaseUrl".`);
  }
  return parseRelease(json, url);
}
