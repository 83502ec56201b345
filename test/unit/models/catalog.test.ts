import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCatalog, customFiles, entriesFor, quantFromName } from '../../../src/core/models/catalog/catalog';
import { defaultScanRoots, scanLocalModels } from '../../../src/core/models/catalog/localScan';
import { PRESETS } from '../../../src/core/models/catalog/presets';
import { groupSplitFiles, parseSplitName, splitPartPaths } from '../../../src/core/models/inspect/splitFiles';

describe('model catalog', () => {
  it('has the presets the issue names, every quant, and no invented hashes', () => {
    for (const id of ['qwen2.5-coder-1.5b', 'qwen2.5-coder-7b', 'qwen2.5-coder-14b', 'qwen2.5-coder-32b', 'qwen3-coder-30b-a3b', 'llama-3.3-70b']) {
      const p = PRESETS.find((x) => x.id === id)!;
      assert.ok(p, id);
      assert.deepStrictEqual(
        p.files.map((f) => f.quant),
        ['Q4_K_M', 'Q5_K_M', 'Q6_K', 'Q8_0'],
      );
      for (const f of p.files) {
        assert.strictEqual(f.sha256, 'verify-on-first-download');
        assert.match(f.repo, /^[\w.-]+\/[\w.-]+$/);
        assert.ok(f.sizeBytes > 0.3e9);
      }
    }
    const l70q8 = PRESETS.find((p) => p.id === 'llama-3.3-70b')!.files.find((f) => f.quant === 'Q8_0')!;
    assert.deepStrictEqual(l70q8.files, [
      'Llama-3.3-70B-Instruct-Q8_0/Llama-3.3-70B-Instruct-Q8_0-00001-of-00002.gguf',
      'Llama-3.3-70B-Instruct-Q8_0/Llama-3.3-70B-Instruct-Q8_0-00002-of-00002.gguf',
    ]);
  });

  it('reads the quant from a file name', () => {
    assert.strictEqual(quantFromName('Qwen2.5-Coder-32B-Instruct-Q4_K_M.gguf'), 'Q4_K_M');
    assert.strictEqual(quantFromName('qwen2.5-coder-7b-instruct-q8_0.gguf'), 'Q8_0');
    assert.strictEqual(quantFromName('Llama-3.3-70B-Instruct-Q6_K-00001-of-00002.gguf'), 'Q6_K');
    assert.strictEqual(quantFromName('model-IQ4_XS.gguf'), 'IQ4_XS');
    assert.strictEqual(quantFromName('plain.gguf'), undefined);
  });

  it('counts split GGUFs as one model and notices missing parts', () => {
    assert.deepStrictEqual(parseSplitName('/m/X-Q8_0-00002-of-00003.gguf'), { stem: 'X-Q8_0', index: 2, count: 3 });
    assert.deepStrictEqual(splitPartPaths('/m/X-00002-of-00002.gguf'), ['/m/X-00001-of-00002.gguf', '/m/X-00002-of-00002.gguf']);
    const g = groupSplitFiles(['/a/A-00001-of-00002.gguf', '/a/A-00002-of-00002.gguf', '/a/B.gguf', '/a/C-00001-of-00003.gguf']);
    assert.deepStrictEqual([...g.models.keys()], ['/a/B.gguf', '/a/A-00001-of-00002.gguf']);
    assert.deepStrictEqual([...g.incomplete.keys()], ['/a/C-00001-of-00003.gguf']);
    assert.deepStrictEqual(customFiles('dir/M-00001-of-00002.gguf'), ['dir/M-00001-of-00002.gguf', 'dir/M-00002-of-00002.gguf']);
  });

  describe('local scan', () => {
    let home: string;
    before(() => {
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-scan-'));
      const w = (p: string, bytes = 16) => {
        fs.mkdirSync(path.dirname(path.join(home, p)), { recursive: true });
        fs.writeFileSync(path.join(home, p), Buffer.alloc(bytes));
      };
      // Hugging Face hub cache (what current llama.cpp -hf writes): blobs named by SHA-256, snapshots link to them.
      const sha = 'a'.repeat(64);
      w(`hub/models--bartowski--Qwen2.5-Coder-32B-Instruct-GGUF/blobs/${sha}`, 100);
      fs.mkdirSync(path.join(home, 'hub/models--bartowski--Qwen2.5-Coder-32B-Instruct-GGUF/snapshots/rev1'), { recursive: true });
      fs.symlinkSync(
        `../../blobs/${sha}`,
        path.join(home, 'hub/models--bartowski--Qwen2.5-Coder-32B-Instruct-GGUF/snapshots/rev1/Qwen2.5-Coder-32B-Instruct-Q4_K_M.gguf'),
      );
      // LM Studio: publisher/repo/file
      w('lms/lmstudio-community/Llama-3.3-70B-Instruct-GGUF/Llama-3.3-70B-Instruct-Q4_K_M.gguf', 50);
      w('lms/lmstudio-community/Llama-3.3-70B-Instruct-GGUF/mmproj-model-f16.gguf', 5);
      // A user folder with a split model, an incomplete one and an unknown model
      w('mine/Big-00001-of-00002.gguf', 10);
      w('mine/Big-00002-of-00002.gguf', 20);
      w('mine/Half-00001-of-00002.gguf', 10);
      w('mine/sub/deep/my-finetune-Q5_K_M.gguf', 30);
      w('mine/Qwen2.5-Coder-7B-Instruct-Q8_0.gguf', 40);
    });
    after(() => fs.rmSync(home, { recursive: true, force: true }));

    it('finds models in the hub cache, LM Studio and listed folders, and matches presets', async () => {
      const local = await scanLocalModels([
        { dir: path.join(home, 'hub'), source: 'hf-cache' },
        { dir: path.join(home, 'lms'), source: 'lm-studio' },
        { dir: path.join(home, 'mine'), source: 'directory' },
      ]);
      const byName = new Map(local.map((l) => [path.basename(l.path), l]));
      const hub = byName.get('Qwen2.5-Coder-32B-Instruct-Q4_K_M.gguf')!;
      assert.deepStrictEqual(
        [hub.repo, hub.repoFile, hub.sha256, hub.sizeBytes],
        ['bartowski/Qwen2.5-Coder-32B-Instruct-GGUF', 'Qwen2.5-Coder-32B-Instruct-Q4_K_M.gguf', 'a'.repeat(64), 100],
      );
      assert.strictEqual(byName.get('Big-00001-of-00002.gguf')!.sizeBytes, 30);
      assert.strictEqual(byName.get('Half-00001-of-00002.gguf')!.incomplete, true);
      assert.ok(!byName.has('mmproj-model-f16.gguf'));
      assert.ok(!byName.has('Big-00002-of-00002.gguf'));

      const cat = buildCatalog({ local, custom: [{ repo: 'me/Custom-GGUF', file: 'c-Q4_K_M.gguf', label: 'Custom', roles: ['fim'] }] });
      const q32 = cat.find((e) => e.key === 'preset:qwen2.5-coder-32b:Q4_K_M')!;
      assert.strictEqual(q32.downloaded, true);
      assert.strictEqual(q32.sizeSource, 'disk');
      assert.strictEqual(cat.find((e) => e.key === 'preset:qwen2.5-coder-7b:Q8_0')!.downloaded, true, 'matched by file name in a listed folder');
      assert.strictEqual(cat.find((e) => e.key === 'preset:llama-3.3-70b:Q4_K_M')!.downloaded, false, 'LM Studio has another repo of it');
      const locals = cat
        .filter((e) => e.kind === 'local')
        .map((e) => `${e.label} ${e.quant}`)
        .sort();
      assert.deepStrictEqual(locals, ['Big ?', 'Half ?', 'Llama-3.3-70B-Instruct Q4_K_M', 'my-finetune Q5_K_M']);
      assert.strictEqual(cat.find((e) => e.kind === 'custom')!.downloaded, false);
      assert.ok(entriesFor(cat, 'draft').every((e) => e.roles.includes('draft')));
    });

    it('finds Ollama models through its manifests, by the name Ollama shows, and skips what is not a GGUF', async () => {
      const store = path.join(home, 'ollama');
      const put = (rel: string, data: string | Buffer) => {
        fs.mkdirSync(path.dirname(path.join(store, rel)), { recursive: true });
        fs.writeFileSync(path.join(store, rel), data);
      };
      const gguf = 'b'.repeat(64);
      const notGguf = 'c'.repeat(64);
      put(`blobs/sha256-${gguf}`, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(60)]));
      put(`blobs/sha256-${notGguf}`, 'not a model');
      const manifest = (digest: string) =>
        JSON.stringify({
          schemaVersion: 2,
          layers: [
            { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${digest}`, size: 64 },
            { mediaType: 'application/vnd.ollama.image.template', digest: `sha256:${'d'.repeat(64)}`, size: 10 },
          ],
        });
      put('manifests/registry.ollama.ai/library/qwen2.5-coder/7b', manifest(gguf));
      put('manifests/registry.ollama.ai/someone/broken/latest', manifest(notGguf));
      put('manifests/registry.ollama.ai/library/garbage/latest', '{ not json');
      const local = await scanLocalModels([{ dir: store, source: 'ollama' }]);
      assert.deepStrictEqual(
        local.map((l) => [l.name, l.path, l.sha256, l.sizeBytes, l.source]),
        [['qwen2.5-coder:7b', path.join(store, 'blobs', `sha256-${gguf}`), gguf, 64, 'ollama']],
      );
      const cat = buildCatalog({ local });
      assert.strictEqual(cat.find((e) => e.kind === 'local')!.label, 'qwen2.5-coder:7b');
    });

    it('looks where llama.cpp and LM Studio keep models', () => {
      const roots = defaultScanRoots({ XDG_CACHE_HOME: '/x' }, '/home/u', 'linux').map((r) => `${r.source}:${r.dir}`);
      assert.deepStrictEqual(roots, [
        'hf-cache:/x/huggingface/hub',
        'llama.cpp-cache:/x/llama.cpp',
        'lm-studio:/home/u/.lmstudio/models',
        'lm-studio:/home/u/.cache/lm-studio/models',
        'ollama:/home/u/.ollama/models',
        'ollama:/usr/share/ollama/.ollama/models',
      ]);
      assert.deepStrictEqual(
        defaultScanRoots({ OLLAMA_MODELS: '/big/ollama' }, '/home/u', 'linux')
          .filter((r) => r.source === 'ollama')
          .map((r) => r.dir),
        ['/big/ollama'],
      );
      assert.strictEqual(defaultScanRoots({ HF_HOME: '/hf' }, '/home/u', 'darwin')[1].dir, '/home/u/Library/Caches/llama.cpp');
    });
  });
});
