// The release download's failures: one error class with a code per cause (the window offers a
// build instead on UNREACHABLE, NO_ASSET, ...) and a message a user can act on, shared by the
// metadata read (llamaRelease.ts) and the download and install (downloadLlamaServer.ts).

export class LlamaDownloadError extends Error {
  constructor(
    readonly code:
      'UNREACHABLE' | 'RELEASE_METADATA' | 'NO_ASSET' | 'NO_CHECKSUM' | 'HTTP' | 'TRUNCATED' | 'CHECKSUM' | 'UNPACK' | 'NO_BINARY' | 'VERIFY' | 'ABORTED',
    message: string,
  ) {
    super(message);
    this.name = 'LlamaDownloadError';
  }
}

/** fetch() says only "fetch failed"; the reason (ENOTFOUND, ECONNREFUSED, ...) is in its cause. */
export function networkCause(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
}
