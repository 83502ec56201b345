import { spawnSync } from 'child_process';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';

// Build steps shared by the two extension-host runners: the product extension (dist/, via the
// repo's esbuild.mjs, only when a bundle is missing or older than its inputs) and the test bundle (out/exthost/suites.js: suite/index.ts
// plus every suite/*.test.ts, with mocha bundled in and `vscode` left to the extension host).

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SUITE_DIR = path.join(__dirname, 'suite');
export const OUT_DIR = path.join(REPO_ROOT, 'out', 'exthost');

/**
 * What `node esbuild.mjs` reads: the sources it bundles (src/ imports media/ too) and what decides
 * how (its own config, the TypeScript config, the dependencies as installed).
 */
export const BUNDLE_INPUTS = {
  dirs: ['src', 'media'],
  files: ['esbuild.mjs', 'package.json', 'package-lock.json', 'node_modules/.package-lock.json', 'tsconfig.json'],
};
/** What it writes: every bundle the extension host, the daemon, the peer and the chat webview load. */
export const BUNDLE_OUTPUTS = ['dist/extension.js', 'dist/sidecar.js', 'dist/peer.js', 'dist/media/chat.js', 'dist/media/chat.css'];

interface Stamp {
  mtimeMs: number;
  path: string;
}

/** The newest file or folder below dir (a folder's own time moves when a file is added, removed or renamed). */
function newestBelow(dir: string): Stamp {
  let newest: Stamp = { mtimeMs: fs.statSync(dir).mtimeMs, path: dir };
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    const s = entry.isDirectory() ? newestBelow(p) : entry.isFile() ? { mtimeMs: fs.statSync(p).mtimeMs, path: p } : undefined;
    if (s && s.mtimeMs > newest.mtimeMs) newest = s;
  }
  return newest;
}

/**
 * Why the bundles in dist/ cannot be reused: one is missing, or an input is newer than the
 * oldest of them; undefined when they are current. Only mtimes are read (a few hundred stats).
 */
export function bundleStaleness(root: string = REPO_ROOT): string | undefined {
  let oldest: Stamp | undefined;
  for (const rel of BUNDLE_OUTPUTS) {
    const p = path.join(root, rel);
    if (!fs.existsSync(p)) return `${rel} is missing`;
    const mtimeMs = fs.statSync(p).mtimeMs;
    if (!oldest || mtimeMs < oldest.mtimeMs) oldest = { mtimeMs, path: p };
  }
  const stamps: Stamp[] = [
    ...BUNDLE_INPUTS.dirs
      .map((d) => path.join(root, d))
      .filter((d) => fs.existsSync(d))
      .map(newestBelow),
    ...BUNDLE_INPUTS.files
      .map((f) => path.join(root, f))
      .filter((f) => fs.existsSync(f))
      .map((f) => ({ mtimeMs: fs.statSync(f).mtimeMs, path: f })),
  ];
  const newest = stamps.reduce((a, b) => (b.mtimeMs > a.mtimeMs ? b : a));
  if (newest.mtimeMs > oldest!.mtimeMs) return `${path.relative(root, oldest!.path)} is older than ${path.relative(root, newest.path) || '.'}`;
  return undefined;
}

/** Runs `node esbuild.mjs` when a bundle in dist/ is missing or older than what goes into it (or STRATA_REBUILD is set). */
export function ensureExtensionBuilt(log: (line: string) => void = () => undefined): void {
  const stale = process.env.STRATA_REBUILD ? 'STRATA_REBUILD is set' : bundleStaleness();
  if (!stale) return;
  log(`${stale}: building (node esbuild.mjs)`);
  const r = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`Building the extension failed (node esbuild.mjs, exit ${r.status}):\n${r.stdout}${r.stderr}`);
  }
}

/** The suite files, sorted: suite/*.test.ts. */
export function suiteFiles(): string[] {
  return fs
    .readdirSync(SUITE_DIR)
    .filter((f) => /\.test\.ts$/.test(f))
    .sort();
}

/**
 * Bundles the suites into out/exthost/suites.js and returns its path. The generated entry
 * registers each suite with index.ts (loaded lazily, after mocha has set up describe/it) and
 * re-exports index.ts's run().
 */
export async function buildSuites(opts: { files?: string[] } = {}): Promise<string> {
  const files = opts.files ?? suiteFiles();
  if (files.length === 0) throw new Error(`No extension-host suites (*.test.ts) in ${SUITE_DIR}`);
  const entry = [
    `const index = require('./index');`,
    ...files.map((f) => `index.registerSuite(${JSON.stringify(f)}, () => require(${JSON.stringify(`./${f}`)}));`),
    `module.exports = { run: index.run };`,
  ].join('\n');
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const outfile = path.join(OUT_DIR, 'suites.js');
  await esbuild.build({
    stdin: { contents: entry, resolveDir: SUITE_DIR, sourcefile: 'exthost-suites-entry.js', loader: 'js' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    outfile,
    external: ['vscode'],
    logLevel: 'warning',
    // mocha's parallel mode (unused here) resolves worker files at run time.
    logOverride: { 'require-resolve-not-external': 'silent' },
    // mocha 12 mixes ESM and CJS files; bundling it keeps the suite loadable by extension hosts
    // whose Node cannot require() ESM (VS Code desktop's Electron).
    mainFields: ['main', 'module'],
  });
  return outfile;
}
