import * as fs from 'fs';

// llama-server's /metrics is Prometheus text; the sidecar needs a handful of numbers from it
// (activity for idle unload, throughput for the status bar), so a tiny parser is enough.

export function parsePrometheus(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    // name{labels} value [timestamp]; llama-server emits no labels today.
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    out[m[1].replace(/^llamacpp:/, '')] = value;
  }
  return out;
}

/** A value that changes whenever the server did any work; equal values mean it sat idle. */
export function activitySignature(m: Record<string, number>): string {
  return [m.prompt_tokens_total, m.tokens_predicted_total, m.n_decode_total, m.requests_processing, m.requests_deferred].join('/');
}

export function isBusy(m: Record<string, number>): boolean {
  return (m.requests_processing ?? 0) > 0 || (m.requests_deferred ?? 0) > 0;
}

/** Resident set size in bytes (Linux); undefined elsewhere. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
