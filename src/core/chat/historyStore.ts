import * as fs from 'fs';
import * as path from 'path';
import { Conversation, ConversationSummary, parseConversation, summarize } from './conversation';

// Conversations on disk, one JSON file per conversation in one directory. Every write is atomic:
// the new content goes to a temporary file in the same directory, is fsync'ed, then renamed over
// the old file, and the directory is fsync'ed so that the rename itself survives a power cut. A
// crash at any point leaves either the old file or the new one, never half of one. Temporary
// files left by a crash are removed on the next start.

const SUFFIX = '.json';
const TMP_MARK = '.tmp-';

export class HistoryStore {
  private summaries?: Map<string, ConversationSummary>;
  /** Serializes writes per conversation so that a slow write cannot overtake a newer one. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(readonly dir: string) {}

  private fileOf(id: string): string {
    if (!/^[A-Za-z0-9-]{1,80}$/.test(id)) throw new Error(`invalid conversation id ${JSON.stringify(id)}`);
    return path.join(this.dir, id + SUFFIX);
  }

  /** Summaries of every stored conversation, newest first. Unreadable files are skipped (and kept). */
  async list(): Promise<ConversationSummary[]> {
    if (!this.summaries) {
      const map = new Map<string, ConversationSummary>();
      let names: string[] = [];
      try {
        names = await fs.promises.readdir(this.dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      for (const name of names) {
        if (name.includes(TMP_MARK)) {
          // Left by a crash between write and rename (the real file is intact), unless another
          // window is writing it right now: only old ones go.
          const tmp = path.join(this.dir, name);
          const st = await fs.promises.stat(tmp).catch(() => undefined);
          if (st && Date.now() - st.mtimeMs > 60_000) await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
          continue;
        }
        if (!name.endsWith(SUFFIX)) continue;
        const c = await this.readFile(path.join(this.dir, name));
        if (c) map.set(c.id, summarize(c));
      }
      this.summaries = map;
    }
    return [...this.summaries.values()].sort((a, b) => b.updatedAt - a.updatedAt);
  }

  async load(id: string): Promise<Conversation | undefined> {
    await this.writing.get(id);
    return this.readFile(this.fileOf(id));
  }

  private async readFile(file: string): Promise<Conversation | undefined> {
    try {
      return parseConversation(JSON.parse(await fs.promises.readFile(file, 'utf8')));
    } catch {
      return undefined;
    }
  }

  async save(c: Conversation): Promise<void> {
    const text = JSON.stringify(c);
    const summary = summarize(c);
    const prev = this.writing.get(c.id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => atomicWrite(this.fileOf(c.id), text));
    this.writing.set(c.id, next);
    try {
      await next;
      this.summaries?.set(c.id, summary);
    } finally {
      if (this.writing.get(c.id) === next) this.writing.delete(c.id);
    }
  }

  async rename(id: string, title: string): Promise<Conversation | undefined> {
    const c = await this.load(id);
    if (!c) return undefined;
    c.title = title.trim() || c.title;
    c.titleSetByUser = true;
    await this.save(c);
    return c;
  }

  async delete(id: string): Promise<void> {
    await this.writing.get(id)?.catch(() => undefined);
    await fs.promises.rm(this.fileOf(id), { force: true });
    await fsyncDir(this.dir);
    this.summaries?.delete(id);
  }

  async clear(): Promise<number> {
    const all = await this.list();
    for (const s of all) await this.delete(s.id);
    return all.length;
  }
}

/** Writes `text` to `file` so that a crash leaves the old content or the new, never a mix. */
export async function atomicWrite(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}${TMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fh = await fs.promises.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals the rename itself.
  if (process.platform === 'win32') return;
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
