// Where a model file from the hub goes: <downloads>/<org>/<repo>/<path in repo>, and nowhere
// else. Repository and file names come from settings (strata.models.custom, possibly from a
// cloned repository's .vscode/settings.json), presets and folder scans, so each is checked before
// it becomes a path: a file named "../../../../.bashrc" must not overwrite ~/.bashrc. The resolved
// path is then checked to lie inside the download folder, on disk too, so that a subfolder that
// is a link to elsewhere cannot carry the write out.

import * as fs from 'fs';
import * as path from 'path';
import { DownloadError } from './downloadFile';

// Hub names: letters, digits, "-", "_", "."; file segments also allow what GGUF names use (+, =, @, brackets, spaces inside).
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const FILE_PART = /^[A-Za-z0-9_+=,@()[\]-][A-Za-z0-9._+=,@()[\] -]{0,254}$/;

/** Throws unless `repo` is "owner/name" as the hub spells them. */
export function checkRepoId(repo: string): void {
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => REPO_PART.test(p) && !p.includes('..'))) {
    throw new DownloadError(
      'unsafe-name',
      `Strata will not download from "${printable(repo)}": a repository is "owner/name" with letters, digits, "-", "_" and "." only; fix the entry in "strata.models.custom".`,
    );
  }
}

/** Throws unless `file` is a relative "/"-separated path whose every segment is a plain name (no "..", no hidden names, no backslash or control characters). */
export function checkRepoFile(repo: string, file: string): void {
  const parts = file.split('/');
  if (file.length > 1024 || !parts.every((p) => FILE_PART.test(p) && !p.endsWith(' ') && !p.endsWith('.'))) {
    throw new DownloadError(
      'unsafe-name',
      `Strata will not download "${printable(file)}" from ${printable(repo)}: a model file name may not be absolute, climb with "..", start with "." or hold backslashes or control characters; fix the entry in "strata.models.custom".`,
    );
  }
}

/** The final path of `file` from `repo` under downloadDir, after checking both names and that the result stays inside. */
export function modelDestination(downloadDir: string, repo: string, file: string): string {
  checkRepoId(repo);
  checkRepoFile(repo, file);
  const root = path.resolve(downloadDir);
  const dest = path.resolve(root, ...repo.split('/'), ...file.split('/'));
  if (!isInside(root, dest)) {
    throw new DownloadError(
      'unsafe-name',
      `Strata will not download "${printable(file)}": it would land outside ${root}; fix the entry in "strata.models.custom".`,
    );
  }
  return dest;
}

/**
 * Creates the folders for `dest` and checks, on disk, that they lie inside downloadDir: the
 * deepest folder that exists is resolved (links followed) before anything is created, and the
 * final folder once more after, so that a link on the way (a symlinked subfolder) cannot lead out.
 */
export async function makeDestinationFolder(downloadDir: string, dest: string): Promise<void> {
  await fs.promises.mkdir(downloadDir, { recursive: true });
  const root = await fs.promises.realpath(downloadDir);
  let existing = path.dirname(dest);
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  await checkReal(root, existing, downloadDir, dest);
  await fs.promises.mkdir(path.dirname(dest), { recursive: true });
  await checkReal(root, path.dirname(dest), downloadDir, dest);
}

async function checkReal(realRoot: string, dir: string, downloadDir: string, dest: string): Promise<void> {
  const real = await fs.promises.realpath(dir);
  if (!isInside(realRoot, real)) {
    throw new DownloadError(
      'unsafe-name',
      `Strata will not download ${path.basename(dest)}: the folder ${dir} leads outside ${downloadDir} (to ${real}) through a link; remove the link or set "strata.models.downloadDirectory" to the folder you want.`,
    );
  }
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** Names are quoted in messages; control characters would garble the notification. */
function printable(s: string): string {
  return JSON.stringify(s.replace(/[\x00-\x1f\x7f]/g, '?'))
    .slice(1, -1)
    .slice(0, 200);
}
