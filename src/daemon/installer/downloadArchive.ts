import * as fs from 'fs';
import * as fsp from 'fs/promises';
import * as path from 'path';
import { Transform, Writable } from 'stream';
import { pipeline } from 'stream/promises';
import * as tar from 'tar';
import { promisify } from 'util';
import * as yauzl from 'yauzl';
import * as zlib from 'zlib';
import { ArchiveError, ArchiveLink, archiveEntryName, makeArchiveLinks, unsafeName } from './archiveLinks';

// Unpacking release archives (.tar.gz and .zip) with Node alone: no `tar`/`unzip` on the user's
// PATH is assumed (Windows, minimal Linux images). The formats are read by node-tar and yauzl;
// what may be written where is decided in archiveLinks.ts: symbolic links are held back and made
// last, only when they stay inside the folder. Unpack into a fresh folder (the installer uses a
// temp folder and renames it into place): a refused or corrupt archive leaves a partial tree there.

export { ArchiveError };

export type ArchiveKind = 'tar.gz' | 'zip';

/** Unpacks into destDir (created, and expected empty); returns the number of regular files written. */
export async function extractArchive(file: string, kind: ArchiveKind, destDir: string, signal?: AbortSignal): Promise<number> {
  await fsp.mkdir(destDir, { recursive: true });
  return kind === 'zip' ? extractZip(file, destDir, signal) : extractTarGz(file, destDir, signal);
}

function corrupt(e: unknown): ArchiveError {
  if (e instanceof ArchiveError) return e;
  // yauzl refuses such names itself, before the entry reaches us: the same message as our own check.
  const unsafe = /^(?:absolute path|invalid relative path|invalid characters in fileName): (.*)$/s.exec((e as Error).message);
  if (unsafe) return unsafeName(unsafe[1]);
  return new ArchiveError(`The archive could not be unpacked (${(e as Error).message}): it is truncated or corrupt; download it again.`);
}

const cancelled = () => new ArchiveError('Unpacking was cancelled.');

async function extractTarGz(file: string, destDir: string, signal?: AbortSignal): Promise<number> {
  const links: ArchiveLink[] = [];
  let refused: ArchiveError | undefined;
  let files = 0;
  try {
    await tar.x({
      file,
      cwd: destDir,
      // Any entry node-tar will not write (a ".." path, a hard link it cannot make) fails the whole archive.
      strict: true,
      // Root would otherwise get the archive's owners.
      preserveOwner: false,
      filter: (name, entry) => {
        if (refused) return false;
        if (signal?.aborted) {
          refused = cancelled();
          return false;
        }
        const e = entry as tar.ReadEntry;
        try {
          archiveEntryName(name);
          if (e.type === 'Link') archiveEntryName(String(e.linkpath));
        } catch (err) {
          refused = err as ArchiveError;
          return false;
        }
        if (e.type === 'SymbolicLink') {
          links.push({ name, target: String(e.linkpath) });
          return false;
        }
        if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') files++;
        // Devices and fifos: a release archive has none.
        return ['File', 'OldFile', 'ContiguousFile', 'Directory', 'Link'].includes(e.type);
      },
    });
  } catch (e) {
    throw refused ?? corrupt(e);
  }
  if (refused) throw refused;
  await makeArchiveLinks(destDir, links);
  return files;
}

const S_IFMT = 0o170000;

async function extractZip(file: string, destDir: string, signal?: AbortSignal): Promise<number> {
  let zip: yauzl.ZipFile;
  try {
    zip = await promisify<string, yauzl.Options, yauzl.ZipFile>(yauzl.open)(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true });
  } catch (e) {
    throw corrupt(e);
  }
  const links: ArchiveLink[] = [];
  let files = 0;
  try {
    for (let e = await nextEntry(zip); e; e = await nextEntry(zip)) {
      if (signal?.aborted) throw cancelled();
      const rel = archiveEntryName(e.fileName);
      const mode = e.versionMadeBy >> 8 === 3 ? e.externalFileAttributes >>> 16 : 0;
      const target = path.join(destDir, ...rel.split('/'));
      if (e.fileName.endsWith('/') || (mode & S_IFMT) === 0o040000) {
        await fsp.mkdir(target, { recursive: true });
      } else if ((mode & S_IFMT) === 0o120000) {
        links.push({ name: e.fileName, target: (await readEntry(zip, e, 4096)).toString('utf8') });
      } else {
        // No link exists on disk before the end, so these folders are real ones inside destDir.
        await fsp.mkdir(path.dirname(target), { recursive: true });
        await writeEntry(zip, e, target, mode & 0o111 ? 0o755 : 0o644);
        files++;
      }
    }
  } catch (e) {
    throw corrupt(e);
  } finally {
    zip.close();
  }
  await makeArchiveLinks(destDir, links);
  return files;
}

function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const done = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const onEntry = (e: yauzl.Entry) => {
      done();
      resolve(e);
    };
    const onEnd = () => {
      done();
      resolve(undefined);
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

/** The entry's bytes through a CRC-32 check (yauzl checks sizes, not CRCs). */
async function entryStream(zip: yauzl.ZipFile, e: yauzl.Entry): Promise<[NodeJS.ReadableStream, Transform]> {
  const src = await promisify<yauzl.Entry, NodeJS.ReadableStream>(zip.openReadStream.bind(zip))(e);
  let crc = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      crc = zlib.crc32(chunk, crc);
      cb(null, chunk);
    },
    flush(cb) {
      cb(crc >>> 0 === e.crc32 >>> 0 ? null : new ArchiveError(`The zip archive is corrupt ("${e.fileName}" fails its CRC check): download it again.`));
    },
  });
  return [src, check];
}

async function writeEntry(zip: yauzl.ZipFile, e: yauzl.Entry, target: string, mode: number): Promise<void> {
  const [src, check] = await entryStream(zip, e);
  await pipeline(src, check, fs.createWriteStream(target, { mode }));
}

async function readEntry(zip: yauzl.ZipFile, e: yauzl.Entry, max: number): Promise<Buffer> {
  if (e.uncompressedSize > max) throw new ArchiveError(`The zip archive's link "${e.fileName}" is ${e.uncompressedSize} bytes long: refusing to unpack it.`);
  const [src, check] = await entryStream(zip, e);
  const chunks: Buffer[] = [];
  await pipeline(
    src,
    check,
    new Writable({
      write: (c: Buffer, _enc, cb) => {
        chunks.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(chunks);
}
