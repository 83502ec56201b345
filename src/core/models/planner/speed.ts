// Expected generation rate. Decoding one token reads every active weight once (MoE: only the
// routed experts) plus the KV cache filled so far, so memory bandwidth bounds it. The range
// uses 60-85 % of peak bandwidth (what llama.cpp reaches on GPUs and APUs) and a fixed
// per-layer overhead (kernel launches, synchronisation), which matters on fast GPUs: an H100
// at 3.35 TB/s runs a 32B Q4_K_M model at 84 tok/s, not the 170 the bandwidth alone allows.
// It is an estimate and is always labelled so.

export interface SpeedShare {
  /** Bytes of weights this device reads per token. */
  weightBytes: number;
  /** KV bytes per token of context on this device. */
  kvBytesPerToken: number;
  layers: number;
  bandwidthGBps: number;
}

export interface SpeedEstimate {
  /** tok/s with a full context (slowest). */
  low: number;
  /** tok/s with an empty context (fastest). */
  high: number;
  /** Weights read per token, bytes. */
  bytesPerToken: number;
  basis: string;
}

const EFF_LOW = 0.6;
const EFF_HIGH = 0.85;
const LAYER_OVERHEAD_S = 60e-6;
/** A token crossing an RPC hop on a LAN costs about this (latency, not bandwidth). */
export const RPC_HOP_S = 1.5e-3;

export function estimateSpeed(shares: readonly SpeedShare[], ctx: number, rpcHops = 0): SpeedEstimate {
  const time = (eff: number, fill: number) =>
    shares.reduce((s, d) => {
      const bytes = d.weightBytes + d.kvBytesPerToken * fill;
      return s + bytes / (d.bandwidthGBps * 1e9 * eff) + d.layers * LAYER_OVERHEAD_S;
    }, 0) +
    rpcHops * RPC_HOP_S;
  const bytesPerToken = shares.reduce((s, d) => s + d.weightBytes, 0);
  const bw = shares.map((d) => `${Math.round(d.bandwidthGBps)} GB/s`).join(' + ');
  return {
    high: 1 / time(EFF_HIGH, 0),
    low: 1 / time(EFF_LOW, ctx),
    bytesPerToken,
    basis: `${bw} ÷ ${(bytesPerToken / 1e9).toFixed(1)} GB read per token`,
  };
}

/** "7–11 tok/s (estimate)" */
export function speedLabel(s: SpeedEstimate): string {
  const r = (x: number) => (x >= 20 ? Math.round(x) : Math.round(x * 10) / 10);
  return `${r(s.low)}–${r(s.high)} tok/s (estimate)`;
}
