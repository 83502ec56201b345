// @ts-check
// ESLint for the TypeScript and .mjs sources: typescript-eslint's recommended rules (without type
// information, so that a run stays a few seconds on two cores) and the layer rules that keep the
// architecture (docs/architecture.md) as it is drawn. `npm run lint`; scripts/test-all.mjs runs it.
// typescript-eslint's recommended set reported 4 problems on this code base when it was added (all
// fixed), so none of its rules is turned off; prefer-const is set to the code's style below.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/**
 * no-restricted-imports matches the import's text, not the file it resolves to, so a relative
 * path that leaves a folder is spelled differently at every depth below it (`../x` one level
 * down, `../../x` two levels down). This gives one config object per depth: `rules(up)` gets the
 * regex for "as many `../` as it takes to reach `folder`'s parent" and returns that depth's
 * no-restricted-imports patterns. Eight levels is deeper than any folder here.
 */
function perDepth(folder, rules) {
  return Array.from({ length: 8 }, (_, depth) => ({
    files: [`${folder}/${'*/'.repeat(depth)}*.ts`],
    rules: { 'no-restricted-imports': ['error', { paths: [VSCODE], patterns: rules(`^(\\.\\./){${depth + 1}}`) }] },
  }));
}

const VSCODE = {
  name: 'vscode',
  message: 'Only src/vscode and src/extension.ts run in the extension host: pass what this code needs in from there.',
};

/** src/core/chat modules the chat webview may bundle: they import nothing at run time (types only). */
const PURE_CHAT = ['webviewProtocol', 'thinkSplitter'];

export default defineConfig(
  {
    ignores: [
      'dist/**',
      'out/**',
      'native/build*/**',
      '.test-artifacts/**',
      '.vscode-test/**',
      '.gpu/**',
      // Other projects' code, kept verbatim as held-out data for the completion quality benchmark.
      'test/fixtures/quality/**',
    ],
  },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  {
    files: ['**/*.ts', '**/*.mjs'],
    extends: [tseslint.configs.recommended],
    rules: {
      // The code base destructures with `let` when one of the names is reassigned later
      // (`let { node, missing } = check(); ... ({ missing } = check())`): flag only when every
      // destructured name could be const.
      'prefer-const': ['error', { destructuring: 'all' }],
      // From ESLint's own recommended set, which is not enabled whole (no-undef and friends need
      // per-environment globals; tsc checks that): a `\p` in a template string is a `p`, which once
      // turned a Windows pipe name into a relative path.
      'no-useless-escape': 'error',
    },
  },

  // Layers. src/core is the layer below everything: the daemon, the peer agent and the webview
  // bundle parts of it, so it imports no `vscode` and nothing outside src/core.
  ...perDepth('src/core', (up) => [
    { regex: up, message: 'src/core imports nothing outside src/core (not src/vscode, src/daemon, src/cluster): move the shared part into src/core.' },
  ]),
  // The daemon and the peer agent run in plain Node, where `vscode` does not exist.
  ...['src/daemon', 'src/cluster'].flatMap((folder) =>
    perDepth(folder, (up) => [
      { regex: `${up}(vscode(/|$)|extension$)`, message: 'The daemon and the peer agent run without VS Code: they import nothing from src/vscode.' },
    ]),
  ),
  // The window reaches the installer through its one entry, src/daemon/installer/index.ts, so the
  // installer can change its modules without touching the extension.
  ...Array.from({ length: 8 }, (_, depth) => ({
    files: [`src/vscode/${'*/'.repeat(depth)}*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: `^(\\.\\./){${depth + 1}}daemon/installer/.`, message: 'Import the installer through its entry (src/daemon/installer/index.ts).' },
          ],
        },
      ],
    },
  })),
  // One command registry: commands are registered through registerCommands() (src/vscode/commands.ts),
  // whose table type holds each capability to the ids commandIds.ts declares.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/vscode/commands.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.property.name='commands'][property.name=/^register(TextEditor)?Command$/]",
          message: 'Register commands through registerCommands() in src/vscode/commands.ts.',
        },
      ],
    },
  },
  // The window <-> daemon protocol is plain data that both ends (and tests) share: it imports
  // nothing outside its own folder, not even Node's built-ins.
  ...perDepth('src/core/protocol', (up) => [
    { regex: up, message: 'The protocol imports nothing outside src/core/protocol: define the type here and let the other side import it.' },
    { regex: '^[^.]', message: 'The protocol is plain data: no packages or Node built-ins.' },
  ]),
  // The chat webview is a browser bundle (esbuild.mjs): its own files, the pure chat protocol
  // modules, and the two rendering libraries it ships with.
  {
    files: ['media/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: `^(?!\\./|\\.\\./src/core/chat/(${PURE_CHAT.join('|')})$|markdown-it$|highlight\\.js/)`,
              message: `The chat webview runs in a browser: it imports its own files, src/core/chat/{${PURE_CHAT.join(',')}}, markdown-it and highlight.js only.`,
            },
          ],
        },
      ],
    },
  },
  {
    files: PURE_CHAT.map((name) => `src/core/chat/${name}.ts`),
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [{ regex: '.', allowTypeImports: true, message: 'The chat webview bundles this module: it may import types only (`import type`).' }],
        },
      ],
    },
  },
);
