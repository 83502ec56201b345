import { Worker } from 'worker_threads';

// AES-256-GCM for big tunnel records on worker threads. One core seals or opens ~1.2–1.6 GB/s
// (measured on the dev VM and on the H200 host), and a 32B model's prompt batch sends ~10 MiB of
// hidden state each way per ubatch: on one thread the tunnel's encryption was 65 % of its extra
// time there (bench/cluster-tunnel-throughput.ts). Records are independent (the nonce is the
// record's sequence number), so they can be sealed and opened in parallel and written or
// delivered in order by the channel. Small records stay on the calling thread: a round trip to a
// worker costs more than sealing a few KiB.

const WORKER_SOURCE = `
const { parentPort } = require('worker_threads');
const crypto = require('crypto');
parentPort.on('message', (m) => {
  try {
    const key = Buffer.from(m.key), nonce = Buffer.from(m.nonce), header = Buffer.from(m.header);
    const data = Buffer.from(m.data);
    if (m.op === 'seal') {
      const c = crypto.createCipheriv('aes-256-gcm', key, nonce);
      c.setAAD(header);
      const out = Buffer.allocUnsafeSlow(4 + 1 + data.length + 16);
      header.copy(out, 0);
      let off = 4;
      off += c.update(Buffer.of(m.type)).copy(out, off);
      off += c.update(data).copy(out, off);
      off += c.final().copy(out, off);
      c.getAuthTag().copy(out, off);
      parentPort.postMessage({ id: m.id, ok: true, data: out.buffer }, [out.buffer]);
    } else {
      const d = crypto.createDecipheriv('aes-256-gcm', key, nonce);
      d.setAAD(header);
      d.setAuthTag(data.subarray(data.length - 16));
      const out = Buffer.allocUnsafeSlow(data.length - 16);
      const a = d.update(data.subarray(0, data.length - 16));
      a.copy(out, 0);
      const f = d.final();
      f.copy(out, a.length);
      parentPort.postMessage({ id: m.id, ok: true, data: out.buffer }, [out.buffer]);
    }
  } catch (e) {
    parentPort.postMessage({ id: m.id, ok: false });
  }
});
`;

interface Job {
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
  worker: number;
}

/** Copies into an ArrayBuffer of its own, so that it can be transferred (socket reads share theirs). */
function own(b: Buffer): ArrayBuffer {
  const ab = new ArrayBuffer(b.length);
  new Uint8Array(ab).set(b);
  return ab;
}

export class CryptoPool {
  private readonly workers: Worker[] = [];
  /** Jobs in flight per worker: a worker with work keeps the process alive, an idle one does not. */
  private readonly busy: number[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;
  private next = 0;
  private broken?: Error;
  /** Records sealed or opened so far (tests and benches check that the pool is used). */
  completed = 0;

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.on('message', (m: { id: number; ok: boolean; data?: ArrayBuffer }) => {
        const job = this.jobs.get(m.id);
        if (!job) return;
        this.jobs.delete(m.id);
        if (--this.busy[job.worker] === 0) this.workers[job.worker].unref();
        this.completed++;
        if (m.ok && m.data) job.resolve(Buffer.from(m.data));
        else job.reject(new Error('record failed authentication'));
      });
      w.on('error', (e) => this.fail(e));
      // After the listeners: adding a 'message' listener refs the worker's port again, and a
      // referenced port keeps a CLI (strata-peer connect, a bench) from ever exiting.
      w.unref();
      this.workers.push(w);
      this.busy.push(0);
    }
  }

  /** A whole record (header | ciphertext | tag) for `payload`. */
  seal(key: Buffer, nonce: Buffer, header: Buffer, type: number, payload: Buffer): Promise<Buffer> {
    return this.run({ op: 'seal', key, nonce, header, type }, payload);
  }

  /** The plaintext (type byte first) of `body` (ciphertext | tag); rejects when it fails authentication. */
  open(key: Buffer, nonce: Buffer, header: Buffer, body: Buffer): Promise<Buffer> {
    return this.run({ op: 'open', key, nonce, header }, body);
  }

  private run(msg: Record<string, unknown>, data: Buffer): Promise<Buffer> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    const wi = this.next++ % this.workers.length;
    const w = this.workers[wi];
    if (this.busy[wi]++ === 0) w.ref();
    const ab = own(data);
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject, worker: wi });
      w.postMessage(
        {
          ...msg,
          id,
          key: new Uint8Array(msg.key as Buffer),
          nonce: new Uint8Array(msg.nonce as Buffer),
          header: new Uint8Array(msg.header as Buffer),
          data: ab,
        },
        [ab],
      );
    });
  }

  private fail(e: Error): void {
    this.broken = e;
    for (const j of this.jobs.values()) j.reject(e);
    this.jobs.clear();
    for (const w of this.workers) w.unref();
  }
}

let shared: CryptoPool | null | undefined;

/**
 * The process's pool, or undefined (the default): STRATA_TUNNEL_CRYPTO_THREADS=N turns it on with
 * N threads. Off by default until measured where it should help: on the 2-core dev VM it makes a
 * 10 MiB exchange slower (56 → 71–79 ms with 1–2 threads: the threads compete with the relays, echo and
 * the other end for two cores); the many-core GPU host, where encryption is 65 % of the tunnel's
 * extra time, is the place to measure it (bench/cluster-tunnel-throughput.ts with N = 0 and 4).
 */
export function sharedCryptoPool(env: NodeJS.ProcessEnv = process.env): CryptoPool | undefined {
  if (shared !== undefined) return shared ?? undefined;
  const asked = Number(env.STRATA_TUNNEL_CRYPTO_THREADS ?? 0);
  const n = Number.isFinite(asked) ? Math.max(0, Math.min(16, Math.floor(asked))) : 0;
  try {
    shared = n > 0 ? new CryptoPool(n) : null;
  } catch {
    shared = null;
  }
  return shared ?? undefined;
}
