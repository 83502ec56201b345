import { FAST_TOKS, type MachineSummary } from '../../core/models/machineSummary';
import { gib } from '../../core/models/planner/plan';
import { ACTIONS, noGpuStep, noServerStep } from './nextSteps';

// The "Your machine" page as HTML, from the machine summary and the llama-server Strata would
// run. Pure (no `vscode`), so the escaping is testable. Theme-aware (VS Code's CSS variables
// only), a strict CSP with one nonce, no remote resources. Buttons post the action's title; the
// host carries it out (machinePanel.ts).

export interface ServerFacts {
  /** The executable Strata would run; absent when none was found. */
  path?: string;
  /** setting | managed | path | well-known */
  kind?: string;
  buildId?: string;
  /** "version: 0.5.0-dev (build 1, commit de3ff81)" */
  version?: string;
  backends?: string[];
  /** Why it is unusable or could not be asked. */
  error?: string;
}

export interface MachinePage {
  summary: MachineSummary;
  server: ServerFacts;
  /** When the page was made (shown, so "Check Again" visibly did something). */
  at: Date;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const KIND_WORDS: Record<string, string> = {
  setting: 'from "strata.server.path"',
  managed: "Strata's own install",
  path: 'found on PATH',
  'well-known': 'found in a usual install place',
};

function button(action: string, primary = false, value?: string): string {
  return `<button class="${primary ? 'primary' : 'secondary'}" data-action="${escapeHtml(action)}"${value !== undefined ? ` data-value="${escapeHtml(value)}"` : ''}>${escapeHtml(action)}</button>`;
}

function row(label: string, value: string): string {
  return `<tr><th scope="row">${escapeHtml(label)}</th><td>${value}</td></tr>`;
}

function gpuRows(s: MachineSummary): string {
  if (!s.gpus.length) return row('GPU', '<span class="warn">none found</span>');
  return s.gpus
    .map((g, i) => {
      const arch = g.architecture ? ` <span class="dim">(${escapeHtml(g.architecture)})</span>` : '';
      const mem =
        g.gttBytes !== undefined
          ? `unified memory: ${gib(g.vramBytes ?? 0)} BIOS carve-out + ${gib(g.gttBytes)} GTT window into system RAM; ${gib(g.budgetBytes)} usable now`
          : `${gib(g.totalBytes)} ${g.integrated ? 'shared' : 'VRAM'}; ${gib(g.budgetBytes)} usable now`;
      return row(
        s.gpus.length > 1 ? `GPU ${i}` : 'GPU',
        `${escapeHtml(g.name)}${arch}<br><span class="dim">${escapeHtml(mem)} · seen by ${escapeHtml(g.backends.join(', '))}</span>`,
      );
    })
    .join('');
}

function serverBlock(f: ServerFacts): string {
  if (!f.path) {
    const step = noServerStep();
    return `<p class="warn">${escapeHtml(f.error ?? step.text)}</p><p>${step.actions.map((a, i) => button(a, i === 0)).join(' ')}</p>`;
  }
  const rows = [
    row('Path', `<code>${escapeHtml(f.path)}</code>`),
    row(
      'Build',
      escapeHtml(
        [f.version?.replace(/^version:\s*/, ''), f.kind ? (KIND_WORDS[f.kind] ?? f.kind) : undefined, f.buildId].filter(Boolean).join(' · ') || 'unknown',
      ),
    ),
    row('Backends', escapeHtml(f.backends?.length ? f.backends.join(', ') : 'not known yet')),
  ];
  const err = f.error ? `<p class="warn">${escapeHtml(f.error)}</p>` : '';
  return `<table>${rows.join('')}</table>${err}<p>${button(ACTIONS.build)} ${button(ACTIONS.download)}</p>`;
}

export function renderMachineHtml(page: MachinePage, csp: { nonce: string; cspSource: string }): string {
  const s = page.summary;
  const n = escapeHtml(csp.nonce);
  const means = [`<p class="headline">This machine runs <strong>${escapeHtml(s.capacity.headline)}</strong>.</p>`];
  if (s.capacity.example) means.push(`<p class="dim">For example ${escapeHtml(s.capacity.example)}.</p>`);
  if (s.capacity.beyond) means.push(`<p class="dim">Larger: ${escapeHtml(s.capacity.beyond)}.</p>`);
  if (s.forCompletions) means.push(`<p>For completions as you type (${FAST_TOKS} tok/s or more): <strong>${escapeHtml(s.forCompletions)}</strong>.</p>`);
  if (s.capacityAfterFix) means.push(`<p>With the fix below: <strong>${escapeHtml(s.capacityAfterFix.headline)}</strong>.</p>`);

  const held = s.heldBack.map(
    (h) =>
      `<div class="fix"><p>${escapeHtml(h.text)}</p>${h.copy ? `<pre><code>${escapeHtml(h.copy)}</code></pre><p>${button(ACTIONS.copyKernel, true, h.copy)}</p>` : ''}</div>`,
  );
  const noGpu = s.noGpu
    ? (() => {
        const step = noGpuStep();
        return `<div class="fix" id="no-gpu"><p>${escapeHtml(step.text)}</p><p>${step.actions.map((a, i) => button(a, i === 1)).join(' ')}</p></div>`;
      })()
    : '';
  const facts = [
    gpuRows(s),
    row('RAM', escapeHtml(`${gib(s.ram.totalBytes)} total, ${gib(s.ram.availableBytes)} available now`)),
    ...(s.disk
      ? [row('Free disk', `${escapeHtml(`${(s.disk.freeBytes / 1e9).toFixed(1)} GB`)} <span class="dim">in ${escapeHtml(s.disk.dir)} (model downloads)</span>`)]
      : []),
  ];
  const probeNote = s.fallbackProbe
    ? '<p class="dim">GPU runtimes (CUDA, HIP, Vulkan) were not asked: the native probe is not available here, so only the kernel\'s view (amdgpu sysfs) and /proc were read.</p>'
    : '';

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${n}'; script-src 'nonce-${n}';">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your Machine</title>
<style nonce="${n}">
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 20px 20px; max-width: 860px; line-height: 1.45; }
h1 { font-weight: 600; font-size: 1.6em; margin: 18px 0 4px; }
h2 { font-weight: 600; font-size: 1.15em; margin: 22px 0 8px; border-bottom: 1px solid var(--vscode-editorWidget-border, transparent); padding-bottom: 4px; }
.dim { color: var(--vscode-descriptionForeground); }
.warn { color: var(--vscode-editorWarning-foreground); }
.headline { font-size: 1.15em; }
table { border-collapse: collapse; }
th { text-align: left; font-weight: 600; padding: 4px 16px 4px 0; vertical-align: top; white-space: nowrap; }
td { padding: 4px 0; }
code, pre { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
pre { background: var(--vscode-textCodeBlock-background); padding: 8px 10px; border-radius: 4px; overflow-x: auto; user-select: all; }
.fix { border-left: 3px solid var(--vscode-editorWarning-foreground); padding: 2px 0 2px 12px; margin: 12px 0; }
.footer { margin-top: 22px; }
button { font-family: inherit; font-size: inherit; border: 1px solid var(--vscode-button-border, transparent); border-radius: 2px; padding: 4px 12px; cursor: pointer; margin: 2px 6px 2px 0; }
button.primary { background: var(--vscode-button-background); color: var(--vscode-button-foreground); }
button.primary:hover { background: var(--vscode-button-hoverBackground); }
button.secondary { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); }
button.secondary:hover { background: var(--vscode-button-secondaryHoverBackground); }
button:focus-visible { outline: 1px solid var(--vscode-focusBorder); outline-offset: 2px; }
</style></head>
<body>
<h1>Your machine</h1>
<p class="dim">What Strata found, and what it means for the models you can run. Checked ${escapeHtml(page.at.toLocaleString('en-GB', { hour12: false }))}.</p>
<h2>What it can run</h2>
${means.join('\n')}
${held.join('\n')}
${noGpu}
<h2>Hardware</h2>
<table>${facts.join('')}</table>
${probeNote}
<h2>llama-server</h2>
${serverBlock(page.server)}
<p class="footer">${button(ACTIONS.pickModel, !s.noGpu)} ${button(ACTIONS.checkAgain)}</p>
<script nonce="${n}">
const vscode = acquireVsCodeApi();
document.addEventListener('click', (e) => {
  const b = e.target instanceof Element ? e.target.closest('button[data-action]') : null;
  if (b) vscode.postMessage({ type: 'action', action: b.getAttribute('data-action'), value: b.getAttribute('data-value') ?? undefined });
});
</script>
</body></html>`;
}
