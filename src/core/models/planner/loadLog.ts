// llama.cpp's own account of what it allocated, read from llama-server's log: the per-buffer
// lines printed while loading ("CUDA0 model buffer size = 18432.00 MiB", "KV buffer size",
// "compute buffer size", "output buffer size"; this build prints the model line at -lv 4) and
// the memory breakdown table that --fit prints before loading (whole MiB). Used to check the
// planner against the real thing, in tests and on user machines.

export type BufferKind = 'model' | 'kv' | 'compute' | 'output';

export interface BufferLine {
  /** Buffer type name: "CPU", "CPU_Mapped", "CUDA0", "CUDA_Host", "ROCm0", "Vulkan0", "RPC0[…]". */
  buffer: string;
  kind: BufferKind;
  bytes: number;
}

export interface BreakdownRow {
  /** "Host", "CUDA0 (NVIDIA H100 80GB HBM3)", "CPU_REPACK", … */
  name: string;
  model: number;
  context: number;
  compute: number;
}

export interface LoadLog {
  buffers: BufferLine[];
  /** The last breakdown table in the log (from --fit or from the exit print). */
  breakdown: BreakdownRow[];
}

const MiB = 1024 * 1024;
const KIND: Record<string, BufferKind> = { model: 'model', KV: 'kv', compute: 'compute', output: 'output' };

export function parseLoadLog(text: string): LoadLog {
  const buffers: BufferLine[] = [];
  let breakdown: BreakdownRow[] = [];
  let table: BreakdownRow[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    const b = /\s(\S+)\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB/.exec(line);
    if (b) {
      buffers.push({ buffer: b[1], kind: KIND[b[2]], bytes: Math.round(Number(b[3]) * MiB) });
      continue;
    }
    if (/memory breakdown \[MiB\]/.test(line)) {
      table = [];
      breakdown = table;
      continue;
    }
    // "|   - CUDA0 (H100)   | 81079 = 60000 + (19187 = 17904 +  384 +  898) +  3945 |" or "|   - Host  |  21184 = 18926 + 2048 + 210  |"
    const r = /\|\s+-\s+(.+?)\s+\|\s*(?:\d+\s*=\s*\d+\s*\+\s*\()?\s*\d+\s*=\s*(\d+)\s*\+\s*(\d+)\s*\+\s*(\d+)/.exec(line);
    if (r && table) {
      table.push({ name: r[1].trim(), model: Number(r[2]) * MiB, context: Number(r[3]) * MiB, compute: Number(r[4]) * MiB });
    } else if (table && !/common_memory_breakdown_print|llama_memory_breakdown_print/.test(line)) {
      table = undefined;
    }
  }
  return { buffers, breakdown };
}

/** Sum of one kind over the buffers whose name matches (e.g. /^CUDA0$/ or /^CPU/). */
export function sumBuffers(log: LoadLog, kind: BufferKind, name: RegExp): number {
  return log.buffers.filter((b) => b.kind === kind && name.test(b.buffer)).reduce((s, b) => s + b.bytes, 0);
}
