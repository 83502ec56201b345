import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { summarizeMachine } from '../../src/core/models/machineSummary';
import { machineFromProbe } from '../../src/core/models/planner/devices';
import type { AcceleratorProbe } from '../../src/core/native/types';
import { renderMachineHtml } from '../../src/vscode/walkthrough/machineHtml';
import { ACTIONS, cancelledStep, diskFullStep, noGpuStep, offlineStep, tooBigStep } from '../../src/vscode/walkthrough/nextSteps';
import { pickLanguage, SAMPLE_LANGUAGES, sampleFor } from '../../src/vscode/walkthrough/samples';

// The pure parts of the first run: the walkthrough as package.json declares it (every step done
// by doing something, its media shipped), the dead ends' sentences and buttons, the "Your machine"
// page, and the "Try it" sample.

const root = path.resolve(__dirname, '../..');
const GiB = 1024 ** 3;

interface Step {
  id: string;
  title: string;
  description: string;
  media: { markdown?: string };
  completionEvents?: string[];
}

describe('first run (walkthrough)', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const walkthrough = pkg.contributes.walkthroughs.find((w: { id: string }) => w.id === 'strata.gettingStarted');

  it('declares the five steps in order, each completed by doing it, each with a button that runs a registered command', () => {
    assert.ok(walkthrough, 'no strata.gettingStarted walkthrough in package.json');
    const steps = walkthrough.steps as Step[];
    assert.deepStrictEqual(
      steps.map((s) => s.id),
      ['machine', 'llamaServer', 'model', 'tryIt', 'ask'],
    );
    const commands = new Set<string>((pkg.contributes.commands as { command: string }[]).map((c) => c.command));
    const events = /^(onCommand:strata\.[\w.]+|onContext:strata\.[\w.]+|onSettingChanged:strata\.[\w.]+)$/;
    for (const s of steps) {
      assert.ok(s.completionEvents?.length, `${s.id} has no completion events (it would complete on any click)`);
      for (const e of s.completionEvents!) assert.match(e, events, `${s.id}: ${e}`);
      const buttons = [...s.description.matchAll(/\]\(command:([\w.]+)/g)].map((m) => m[1]);
      assert.ok(buttons.length > 0, `${s.id} has no button`);
      for (const b of buttons) assert.ok(commands.has(b), `${s.id}'s button runs ${b}, which package.json does not contribute`);
    }
    // What completes them: the machine check, a llama-server found, a model chosen or ready, a suggestion accepted, an answer.
    assert.deepStrictEqual(
      steps.map((s) => s.completionEvents),
      [
        ['onCommand:strata.walkthrough.checkMachine'],
        ['onContext:strata.llamaServerFound'],
        ['onSettingChanged:strata.model.path', 'onContext:strata.modelReady'],
        ['onCommand:strata.completion.accepted'],
        ['onContext:strata.chat.answered'],
      ],
    );
  });

  it('each step has markdown media under media/walkthrough/ that ships in the VSIX and loads nothing remote', () => {
    const ignore = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8');
    assert.match(ignore, /^!media\/walkthrough\/\*\.md$/m);
    for (const s of walkthrough.steps as Step[]) {
      const md = s.media.markdown;
      assert.ok(md && md.startsWith('media/walkthrough/') && md.endsWith('.md'), `${s.id}: ${md}`);
      const text = fs.readFileSync(path.join(root, md), 'utf8');
      assert.doesNotMatch(text, /https?:\/\/|<img|<script|<style|style=/i, `${md} loads or styles something itself`);
      assert.match(text, /^# /m);
    }
  });

  describe('dead ends: one sentence and the way on', () => {
    it('no GPU: check again after installing a driver, or a small model', () => {
      const s = noGpuStep();
      assert.match(
        s.text,
        /^Strata found no GPU, so models run on the CPU, where small ones \(up to about 7B\) answer at a usable speed\. If this machine has a GPU, install its driver/,
      );
      assert.deepStrictEqual(s.actions, [ACTIONS.checkAgain, ACTIONS.pickModel]);
    });
    it('offline: build here, or choose a llama-server', () => {
      const s = offlineStep('https://api.github.com/repos/ggml-org/llama.cpp/releases/latest', 'ENOTFOUND');
      assert.strictEqual(
        s.text,
        'Strata could not reach api.github.com to download llama-server (ENOTFOUND); build it for this machine from the llama.cpp source instead, or choose a llama-server you already have.',
      );
      assert.deepStrictEqual(s.actions, [ACTIONS.build, ACTIONS.chooseServer]);
    });
    it("model too big: the planner's reason, a button per fix, always another model", () => {
      const s = tooBigStep({
        summary: 'Llama 3.3 70B Q8_0 does not fit: …',
        fixes: [
          { kind: 'kernel-gtt', text: 'add …', value: 'amdgpu.gttsize=126976 ttm.pages_limit=32505856' },
          { kind: 'add-peer', text: 'add a LAN peer' },
        ],
      });
      assert.deepStrictEqual(s.actions, [ACTIONS.copyKernel, ACTIONS.addPeer, ACTIONS.pickAnother]);
      assert.deepStrictEqual(tooBigStep({ summary: 'x', fixes: [] }).actions, [ACTIONS.pickAnother]);
    });
    it('disk full: another folder, or a smaller model', () => {
      assert.deepStrictEqual(diskFullStep('Not enough disk space …').actions, [ACTIONS.chooseFolder, ACTIONS.pickAnother]);
    });
    it('cancelled half way: how far it got, and Resume', () => {
      const s = cancelledStep('Qwen2.5 Coder 32B Instruct Q4_K_M', 4.2e9, 19.85e9);
      assert.strictEqual(
        s.text,
        'The download of Qwen2.5 Coder 32B Instruct Q4_K_M stopped at 4.2 GB of 20 GB; what arrived is kept, and downloading it again resumes from there.',
      );
      assert.deepStrictEqual(s.actions, [ACTIONS.resume]);
    });
  });

  describe('"Your machine" page', () => {
    const probe: AcceleratorProbe = {
      schema: 1,
      via: 'native',
      backends: [],
      system: { totalBytes: 124.5 * GiB, availableBytes: 118 * GiB, source: 'test' },
      devices: [
        {
          backend: 'amdgpu',
          index: 0,
          name: 'AMD Radeon 8060S <script>',
          architecture: 'gfx1151',
          integrated: true,
          totalBytes: null,
          freeBytes: null,
          budgetBytes: 62 * GiB,
          memorySource: 'amdgpu-sysfs',
          pciBusId: '0000:c5:00.0',
          vram: { totalBytes: 0.5 * GiB, usedBytes: 0.2 * GiB },
          gtt: { totalBytes: 62 * GiB, usedBytes: 0.3 * GiB },
        },
      ],
    };
    const page = {
      summary: summarizeMachine({ probe, machine: machineFromProbe(probe), disk: { dir: '/home/u/.cache/strata/models', freeBytes: 812.3e9 } }),
      server: { path: '/opt/llama/llama-server', kind: 'path', version: 'version: 6123 (abc)', backends: ['ROCm', 'CPU'] },
      at: new Date(0),
    };
    const html = renderMachineHtml(page, { nonce: 'N0nce', cspSource: 'vscode-resource:' });

    it('shows the GPU with its carve-out and GTT window, RAM, free disk, llama-server and what the machine runs', () => {
      assert.match(html, /512 MiB BIOS carve-out \+ 62 GiB GTT window into system RAM/);
      assert.match(html, /RAM<\/th><td>125 GiB total, 118 GiB available now/);
      assert.match(html, /812\.3 GB <span class="dim">in \/home\/u\/\.cache\/strata\/models/);
      assert.match(html, /This machine runs <strong>up to a 70B Q4 model with a 32k context<\/strong>/);
      assert.match(html, /With the fix below: <strong>up to a 70B Q8 model/);
      assert.match(html, /6123 \(abc\) · found on PATH/);
    });

    it('offers the kernel parameters with a copy button, escapes what the probe reports, and allows only its own nonce', () => {
      assert.match(
        html,
        /<pre><code>amdgpu\.gttsize=126976 ttm\.pages_limit=32505856<\/code><\/pre><p><button class="primary" data-action="Copy Kernel Parameters" data-value="amdgpu\.gttsize=126976 ttm\.pages_limit=32505856">/,
      );
      assert.ok(!html.includes('8060S <script>'), 'a device name went into the page unescaped');
      assert.match(html, /8060S &lt;script&gt;/);
      assert.match(html, /content="default-src 'none'; style-src 'nonce-N0nce'; script-src 'nonce-N0nce';"/);
      assert.strictEqual((html.match(/<script/g) ?? []).length, 1);
      assert.doesNotMatch(html, /https?:\/\/|style="/);
    });

    it('no GPU and no llama-server: both say what to do, with buttons', () => {
      const cpu: AcceleratorProbe = {
        schema: 1,
        via: 'fallback',
        backends: [],
        system: { totalBytes: 16 * GiB, availableBytes: 12 * GiB, source: 'test' },
        devices: [],
      };
      const h = renderMachineHtml(
        { summary: summarizeMachine({ probe: cpu, machine: machineFromProbe(cpu) }), server: {}, at: new Date(0) },
        { nonce: 'n', cspSource: 'x' },
      );
      assert.match(h, /Strata found no GPU/);
      assert.match(h, /data-action="Check Again"/);
      assert.match(h, /Strata found no llama-server/);
      assert.match(h, /data-action="Download llama-server".*data-action="Build for This Machine".*data-action="Choose llama-server…"/s);
      assert.match(h, /GPU runtimes \(CUDA, HIP, Vulkan\) were not asked/);
    });
  });

  describe('"Try it" sample', () => {
    it("is in the user's language: the active editor's, else the workspace's most common, else Python", () => {
      assert.strictEqual(pickLanguage('typescriptreact', ['a.py']), 'typescript');
      assert.strictEqual(pickLanguage('markdown', ['/w/a.go', '/w/b.go', '/w/c.py']), 'go');
      assert.strictEqual(pickLanguage(undefined, ['/w/README.md']), 'python');
    });
    it('every sample puts the cursor at the end of an open body and asks about the file', () => {
      for (const l of SAMPLE_LANGUAGES) {
        const s = sampleFor(l);
        const lines = s.text.split('\n');
        assert.ok(!s.text.includes('§'), l);
        assert.match(lines[s.cursorLine], /^\s+$/, `${l}: the cursor line is not an indented empty line: ${JSON.stringify(lines[s.cursorLine])}`);
        assert.match(s.fileName, /^strata-sample\.\w+$/);
        assert.match(s.question, /\?$/);
      }
    });
  });
});
