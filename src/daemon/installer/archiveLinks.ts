import * as fsp from 'fs/promises';
import * as path from 'path';

// What keeps an unpacked archive inside its folder, for tar.gz and zip alike. Entry names may not
// be absolute or climb with "..". Symbolic links (release archives hold shared-library chains such
// as libggml.so -> libggml.so.0 -> libggml.so.0.9.4) are made last, after every file and folder, so
// nothing is ever written through one, and each is made only when its target, followed through the
// archive's other links, stays inside the folder. Checking each link alone is not enough: with
// d1/d2/up -> ../.. (inside), d1/d2/up/d1/d2/up2 -> ../../.. looks inside by its name yet lands
// one level above the folder.

export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

const REFUSE = 'refusing to unpack it; download the archive again from the official release or build llama-server instead';

/** An entry's "/"-separated path inside the archive, or throws when it is absolute, climbs with "..", or holds control characters. */
export function archiveEntryName(name: string): string {
  const clean = name.replace(/\\/g, '/');
  const parts = clean.split('/').filter((p) => p && p !== '.');
  if (clean.startsWith('/') || /^[A-Za-z]:/.test(clean) || parts.includes('..') || /[\x00-\x1f]/.test(clean)) {
    throw unsafeName(name);
  }
  return parts.join('/');
}

export function unsafeName(name: string): ArchiveError {
  return new ArchiveError(`The archive holds an unsafe path "${name}": ${REFUSE}.`);
}

export interface ArchiveLink {
  /** Entry name as written in the archive. */
  name: string;
  target: string;
}

/** Makes the archive's symbolic links in destDir once all of them are known to stay inside it; refuses the archive otherwise. */
export async function makeArchiveLinks(destDir: string, links: readonly ArchiveLink[]): Promise<void> {
  const byPath = new Map<string, string>();
  for (const l of links) byPath.set(archiveEntryName(l.name), l.target);
  for (const [p, target] of byPath) {
    const segs = p.split('/');
    for (let i = 1; i < segs.length; i++) {
      const above = segs.slice(0, i).join('/');
      if (byPath.has(above)) throw new ArchiveError(`The archive places "${p}" behind its own link "${above}": ${REFUSE}.`);
    }
    const where = resolveThroughLinks(byPath, p, target);
    if (where === 'outside') throw new ArchiveError(`The archive's link "${p}" points outside its folder (${target}): ${REFUSE}.`);
    if (where === 'loop') throw new ArchiveError(`The archive's link "${p}" goes round in a loop of links: ${REFUSE}.`);
  }
  for (const [p, target] of byPath) {
    const abs = path.join(destDir, ...p.split('/'));
    const st = await fsp.lstat(abs).catch(() => undefined);
    if (st?.isDirectory()) throw new ArchiveError(`The archive's link "${p}" would replace one of its folders: ${REFUSE}.`);
    // No link lies above p (checked above) and none is on disk yet except those made here, so this only creates real folders.
    await fsp.mkdir(path.dirname(abs), { recursive: true });
    if (st) await fsp.rm(abs, { force: true });
    await fsp.symlink(target, abs);
  }
}

/**
 * Follows `target` from the folder of the link at `linkPath` the way the OS will once the links
 * exist: a name that is another link is replaced by that link's target, and ".." steps out of
 * the folder actually reached, not the one the name spells. The folder tree holds no links but
 * these (they are made last), so this is exact.
 */
function resolveThroughLinks(links: ReadonlyMap<string, string>, linkPath: string, target: string): 'inside' | 'outside' | 'loop' {
  let at = linkPath.split('/').slice(0, -1);
  let todo = target.split('/');
  let expansions = 0;
  if (isAbsoluteAnywhere(target)) return 'outside';
  while (todo.length) {
    const s = todo.shift()!;
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (!at.length) return 'outside';
      at = at.slice(0, -1);
      continue;
    }
    const next = [...at, s].join('/');
    const link = links.get(next);
    if (link === undefined) {
      at.push(s);
      continue;
    }
    // 40 is the kernel's own limit on links followed in one lookup (ELOOP).
    if (++expansions > 40) return 'loop';
    if (isAbsoluteAnywhere(link)) return 'outside';
    todo = [...link.split('/'), ...todo];
  }
  return 'inside';
}

function isAbsoluteAnywhere(p: string): boolean {
  // A backslash is a separator on Windows and a plain character elsewhere: either way no release link needs one.
  return p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.includes('\\');
}
