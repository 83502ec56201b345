import * as assert from 'assert';
import * as path from 'path';
import { ESLint } from 'eslint';

// The layer rules of eslint.config.mjs, through ESLint's own API with the repository's config:
// an import that crosses a layer is an error where it is written, and the imports each layer
// needs stay allowed. The rules match import text per folder depth, so a config change that
// silently stops matching would otherwise go unnoticed (lint would simply pass).

const ROOT = path.resolve(__dirname, '../..');

describe('lint: the layer rules', function () {
  this.timeout(60_000);
  const eslint = new ESLint({ cwd: ROOT });

  /** The restricted imports ESLint reports for `code` written at `file`. */
  async function restricted(file: string, code: string): Promise<string[]> {
    const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
    return result.messages
      .filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === '@typescript-eslint/no-restricted-imports')
      .map((m) => /'([^']+)' import/.exec(m.message)?.[1] ?? m.message);
  }

  const imports = (...specs: string[]) => specs.map((s, i) => `import * as m${i} from '${s}';\nvoid m${i};\n`).join('');

  it('src/core imports no vscode and nothing from src/vscode, src/daemon or src/cluster, at any depth', async () => {
    assert.deepStrictEqual(
      await restricted('src/core/logTail.ts', imports('vscode', '../vscode/settings', '../daemon/daemon', '../cluster/protocol', './paths', './llama/client')),
      ['vscode', '../vscode/settings', '../daemon/daemon', '../cluster/protocol'],
    );
    assert.deepStrictEqual(
      await restricted(
        'src/core/models/planner/graph/tensor.ts',
        imports('../../../../cluster/plan/split', '../../../daemon/lockFile', '../../gguf/reader', 'fs'),
      ),
      ['../../../../cluster/plan/split'],
    );
  });

  it('the protocol imports nothing outside its folder, not even Node built-ins', async () => {
    assert.deepStrictEqual(
      await restricted('src/core/protocol/codec.ts', imports('./messages', './cluster', '../llama/client', '../../cluster/protocol', 'fs', 'node:crypto')),
      ['../llama/client', '../../cluster/protocol', 'fs', 'node:crypto'],
    );
  });

  it('the daemon and the peer agent import nothing from src/vscode', async () => {
    assert.deepStrictEqual(
      await restricted('src/daemon/installer/backends.ts', imports('vscode', '../../vscode/settings', '../../extension', '../../core/paths', '../daemon')),
      ['vscode', '../../vscode/settings', '../../extension'],
    );
    assert.deepStrictEqual(await restricted('src/cluster/agent/child.ts', imports('../../vscode/x', '../../daemon/ports', '../protocol')), ['../../vscode/x']);
  });

  it('the window imports the installer through its entry only', async () => {
    assert.deepStrictEqual(
      await restricted(
        'src/vscode/serverControl/binary.ts',
        imports('../../daemon/installer', '../../daemon/installer/backends', '../../daemon/installer/', '../serverStatus'),
      ),
      ['../../daemon/installer/backends'],
    );
    assert.deepStrictEqual(await restricted('src/vscode/serverStatus.ts', imports('../daemon/installer/findLlamaServer', '../daemon/installer')), [
      '../daemon/installer/findLlamaServer',
    ]);
  });

  it('the chat webview imports its own files, the pure chat modules and its two rendering libraries only', async () => {
    assert.deepStrictEqual(
      await restricted(
        'media/chat.ts',
        imports(
          './markdown',
          '../src/core/chat/webviewProtocol',
          'markdown-it',
          'highlight.js/lib/common',
          '../src/core/chat/conversation',
          '../src/core/llama/client',
          'fs',
          'vscode',
        ),
      ),
      ['../src/core/chat/conversation', '../src/core/llama/client', 'fs', 'vscode'],
    );
  });

  it('a pure chat module imports types only', async () => {
    const code = "import type { TurnStats } from './conversation';\nimport { newId } from './conversation';\nexport type T = TurnStats;\nvoid newId;\n";
    assert.deepStrictEqual(await restricted('src/core/chat/webviewProtocol.ts', code), ['./conversation']);
  });
});
