import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { checkServerFlags, ServerFlagError } from '../../core/llama/serverFlagAllowlist';
import { writeSecretFile } from '../../core/secretFile';
import { PlacedServerState } from '../protocol';
import { startTied, stopTied, TiedChild } from './child';
import { freeLoopbackPort } from './rpcServer';

// Placement mode: the agent runs a whole llama-server of its own for a role (FIM, chat, draft)
// when that model fits on this box, so that two models run at full speed on two boxes instead
// of one model split over both. It listens on this machine's loopback only, with an API key;
// the sidecar reaches it through the same authenticated tunnel as rpc-server.
//
// The sidecar may name only model files under the owner's --models-dir, and only llama-server
// flags from the shared allowlist: a token lets a machine use this box's accelerators, not run
// arbitrary commands or write arbitrary files on it.

const PATH_FLAGS: ReadonlySet<string> = new Set(['-md', '--model-draft']);

/** The shared allowlist (src/core/llama/serverFlagAllowlist.ts), plus a draft model from the models dir. */
export function checkPlacementArgs(args: readonly string[], resolveModel: (name: string) => string): string[] {
  try {
    return checkServerFlags(args, { pathFlags: PATH_FLAGS, resolvePath: resolveModel });
  } catch (e) {
    if (!(e instanceof ServerFlagError)) throw e;
    throw new Error(`llama-server flag ${JSON.stringify(e.flag)} is not allowed in placement mode (the agent accepts model-shaping flags only): ${e.why}.`);
  }
}

interface Placed {
  state: PlacedServerState;
  /** The checked llama-server flags it runs with. */
  args: string[];
  child?: TiedChild;
  port?: number;
  ready?: Promise<PlacedServerState>;
}

export interface PlacementOptions {
  modelsDir?: string;
  findServer: () => string;
  logDir: string;
  log: (m: string) => void;
  readyTimeoutMs?: number;
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class PlacementManager {
  private readonly placed = new Map<string, Placed>();

  constructor(private readonly o: PlacementOptions) {}

  get allowed(): boolean {
    return !!this.o.modelsDir;
  }

  list(): PlacedServerState[] {
    return [...this.placed.values()].map((p) => ({ ...p.state }));
  }

  port(role: string): number | undefined {
    const p = this.placed.get(role);
    return p?.state.phase === 'ready' ? p.port : undefined;
  }

  /** *.gguf files under the models dir (two levels), names relative to it. */
  models(): Array<{ name: string; bytes: number }> {
    const root = this.o.modelsDir;
    if (!root) return [];
    const out: Array<{ name: string; bytes: number }> = [];
    const walk = (dir: string, depth: number) => {
      let ents: fs.Dirent[] = [];
      try {
        ents = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of ents) {
        const p = path.join(dir, e.name);
        if (e.isDirectory() && depth < 2) walk(p, depth + 1);
        else if (e.isFile() && e.name.endsWith('.gguf')) out.push({ name: path.relative(root, p), bytes: fs.statSync(p).size });
      }
    };
    walk(root, 0);
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  resolveModel(name: string): string {
    const root = this.o.modelsDir;
    if (!root) throw new Error('Placement mode is off on this agent: restart it with --models-dir <folder with GGUF files>.');
    const p = path.resolve(root, name);
    const rel = path.relative(path.resolve(root), p);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${name} is outside the agent's models folder ${root}.`);
    let real: string;
    try {
      real = fs.realpathSync(p);
    } catch {
      throw new Error(`${name} is not in the agent's models folder ${root}: copy it there first.`);
    }
    const realRel = path.relative(fs.realpathSync(root), real);
    if (realRel.startsWith('..') || path.isAbsolute(realRel)) throw new Error(`${name} links outside the agent's models folder ${root}.`);
    return real;
  }

  async start(role: string, model: string, args: readonly string[] = []): Promise<PlacedServerState> {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(role)) throw new Error(`Role names are short lowercase words (fim, chat, draft), not ${JSON.stringify(role)}.`);
    const modelPath = this.resolveModel(model);
    const extra = checkPlacementArgs(args, (n) => this.resolveModel(n));
    const cur = this.placed.get(role);
    // The same model with the same flags joins the running server; other flags (a bigger context) restart it.
    if (cur && cur.state.model === model && sameArgs(cur.args, extra) && cur.state.phase !== 'failed' && cur.state.phase !== 'stopped' && cur.ready)
      return cur.ready;
    await this.stop(role);
    const bin = this.o.findServer();
    const port = await freeLoopbackPort();
    const apiKey = crypto.randomBytes(24).toString('base64url');
    // The key goes in a 0600 file, not on the command line that every user of this box can read.
    const keyFile = writeSecretFile(apiKey, { name: `llama-server-${role}-api-key` });
    const full = ['-m', modelPath, '--host', '127.0.0.1', '--port', String(port), '--api-key-file', keyFile.path, '--metrics', ...extra];
    this.o.log(`placement: starting llama-server for role ${role} on 127.0.0.1:${port} with ${model}`);
    let child: TiedChild;
    try {
      child = startTied(bin, full, { env: { ...process.env }, logFile: path.join(this.o.logDir, `llama-server-${role}.log`), log: this.o.log });
    } catch (e) {
      keyFile.remove();
      throw e;
    }
    void child.exited.then(() => keyFile.remove());
    const p: Placed = { state: { role, phase: 'loading', model, apiKey }, child, port, args: extra };
    this.placed.set(role, p);
    p.ready = this.waitReady(p, child, port);
    return p.ready;
  }

  async stop(role: string): Promise<PlacedServerState> {
    const p = this.placed.get(role);
    if (!p) return { role, phase: 'stopped', model: '' };
    this.placed.delete(role);
    if (p.child) await stopTied(p.child, 5000);
    return { role, phase: 'stopped', model: p.state.model };
  }

  async close(): Promise<void> {
    await Promise.all([...this.placed.keys()].map((r) => this.stop(r)));
  }

  private async waitReady(p: Placed, child: TiedChild, port: number): Promise<PlacedServerState> {
    const deadline = Date.now() + (this.o.readyTimeoutMs ?? 600_000);
    for (;;) {
      if (this.placed.get(p.state.role) !== p) throw new Error(`The ${p.state.role} server was stopped while loading.`);
      if (child.hasExited()) {
        p.state = { ...p.state, phase: 'failed', error: `llama-server exited while loading: ${child.tail().filter(Boolean).slice(-3).join(' | ')}` };
        throw new Error(p.state.error);
      }
      if (Date.now() > deadline) {
        await stopTied(child, 2000);
        p.state = { ...p.state, phase: 'failed', error: 'llama-server did not become ready in time' };
        throw new Error(p.state.error);
      }
      try {
        const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.status === 200) break;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    p.state = { ...p.state, phase: 'ready' };
    this.o.log(`placement: role ${p.state.role} ready (pid ${child.pid})`);
    void child.exited.then((r) => {
      if (this.placed.get(p.state.role) === p) {
        p.state = { ...p.state, phase: 'failed', error: `llama-server exited (${r.signal ?? `code ${r.code}`})` };
        this.o.log(`placement: role ${p.state.role} ${p.state.error}`);
      }
    });
    return { ...p.state };
  }
}
