// Bundles every entry point Strata ships. One bundle per process that runs:
// the extension host, the sidecar daemon, the peer agent, and the chat webview.
import * as esbuild from 'esbuild';
import * as fs from 'fs';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const nodeCommon = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
  // `vscode` is provided by the extension host at run time.
  external: ['vscode'],
};

/** @type {esbuild.BuildOptions[]} */
const builds = [
  { ...nodeCommon, entryPoints: { extension: 'src/extension.ts' }, outdir: 'dist' },
  { ...nodeCommon, entryPoints: { sidecar: 'src/daemon/main.ts' }, outdir: 'dist' },
  { ...nodeCommon, entryPoints: { peer: 'src/cluster/peerMain.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } },
  {
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    sourcemap: !production,
    minify: production,
    logLevel: 'info',
    entryPoints: { chat: 'media/chat.ts' },
    outdir: 'dist/media',
  },
  {
    // Chat styles with the codicon stylesheet inlined; its font is copied next to it as codicon.ttf.
    bundle: true,
    minify: production,
    logLevel: 'info',
    entryPoints: { chat: 'media/chat.css' },
    outdir: 'dist/media',
    loader: { '.ttf': 'file' },
    assetNames: '[name]',
  },
];

if (production) {
  // A release build must not ship source maps left over from a development build.
  fs.rmSync('dist', { recursive: true, force: true });
}

if (watch) {
  const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
  await Promise.all(contexts.map((c) => c.watch()));
  console.log('[esbuild] watching; Ctrl+C to stop');
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
