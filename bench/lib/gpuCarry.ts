import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { readGgufHeader } from '../../src/core/models/gguf/reader';

// What the GPU prepare scripts (bench/cluster-gpu-prepare.ts, bench/models-gpu-prepare.ts) share
// besides the llama.cpp tarball (lib/packLlamaSource.ts): keeping the carried folder out of git,
// and shape files cut down to the bytes bench/models-gpu/materialize.py needs to rebuild them.

/** The folder travels with the device `run` tool's `carry`, never with git: .git/info/exclude gets it unless git ignores it already. */
export function ensureIgnored(out: string): void {
  const root = path.resolve(__dirname, '..', '..');
  const rel = path.relative(root, out);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return; // outside the checkout
  if (spawnSync('git', ['check-ignore', '-q', `${rel}/`], { cwd: root }).status === 0) return;
  const line = `/${rel}/`;
  // --git-path, not --git-dir: in a worktree git reads info/exclude from the main repository's folder.
  const exclude = path.resolve(root, execFileSync('git', ['rev-parse', '--git-path', 'info/exclude'], { cwd: root }).toString().trim());
  fs.mkdirSync(path.dirname(exclude), { recursive: true });
  const text = fs.existsSync(exclude) ? fs.readFileSync(exclude, 'utf8') : '';
  if (!text.split('\n').includes(line)) fs.appendFileSync(exclude, `${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`);
}

/** A shape file as materialize.py takes it back: its full size and the extents that are not zeros. */
export interface ShapeExtents {
  size: number;
  extents: Array<{ offset: number; file: string }>;
}

/**
 * Writes the header bytes and the few data extents that must not be zeros (rope_freqs) of the
 * shape file `file` as `<dir>/shapes/<name>.<i>.bin` (`.bin.gz` with `gzip`: the headers are
 * mostly tokenizer strings and shrink ~3.5×, materialize.py reads either); returns their entry
 * for shapes.json.
 */
export async function writeShapeExtents(file: string, name: string, dir: string, opts: { gzip?: boolean } = {}): Promise<ShapeExtents> {
  const h = await readGgufHeader(file, { maxArrayItems: 0 });
  const extents = [{ offset: 0, length: h.dataOffset }];
  for (const t of h.tensors) if (t.name === 'rope_freqs.weight') extents.push({ offset: t.fileOffset, length: t.byteSize });
  fs.mkdirSync(path.join(dir, 'shapes'), { recursive: true });
  const fd = fs.openSync(file, 'r');
  try {
    return {
      size: h.fileSize,
      extents: extents.map((e, i) => {
        const buf = Buffer.alloc(e.length);
        fs.readSync(fd, buf, 0, e.length, e.offset);
        const f = `shapes/${name}.${i}.bin${opts.gzip ? '.gz' : ''}`;
        fs.writeFileSync(path.join(dir, f), opts.gzip ? gzipSync(buf) : buf);
        return { offset: e.offset, file: f };
      }),
    };
  } finally {
    fs.closeSync(fd);
  }
}
