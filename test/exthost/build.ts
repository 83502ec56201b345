import { spawnSync } from 'child_process';
import * as esbuild from 'esbuild';
import * as fs from 'fs';
import * as path from 'path';

// Build steps shared by the two extension-host runners: the product extension (dist/, via the
// repo's esbuild.mjs, only when stale) and the test bundle (out/exthost/suites.js: suite/index.ts
// plus every suite/*.test.ts, with mocha bundled in and `vscode` left to the extension host).

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SUITE_DIR = path.join(__dirname, 'suite');
export const OUT_DIR = path.join(REPO_ROOT, 'out', 'exthost');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.isFile()) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs `node esbuild.mjs` when dist/extension.js is missing or older than src/ or package.json. */
export function ensureExtensionBuilt(log: (line: string) => void = () => undefined): void {
  const main = path.join(REPO_ROOT, 'dist', 'extension.js');
  const built = fs.existsSync(main) ? fs.statSync(main).mtimeMs : 0;
  const sources = Math.max(newestMtime(path.join(REPO_ROOT, 'src')), fs.statSync(path.join(REPO_ROOT, 'package.json')).mtimeMs);
  if (built >= sources && !process.env.STRATA_REBUILD) return;
  log(built ? 'dist/extension.js is older than src/: rebuilding (node esbuild.mjs)' : 'dist/extension.js is missing: building (node esbuild.mjs)');
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
