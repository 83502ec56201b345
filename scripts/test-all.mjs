#!/usr/bin/env node
// Runs every test suite in order, each in its own process, and prints how long each took and
// one closing line "N passed, N failed, N skipped" that CI reads. A suite that crashes before
// mocha reports counts as a failure. Prerequisites (llama.cpp build, test models, code-server)
// are built by the suites themselves through cached, idempotent helpers.
import { spawn } from 'child_process';

const suites = [
  { name: 'typecheck', cmd: 'npx', args: ['tsc', '-p', '.', '--noEmit'], counts: false },
  { name: 'build', cmd: 'node', args: ['esbuild.mjs'], counts: false },
  // Build (or find cached) llama.cpp before any suite, so that no test's hook pays the cold build.
  { name: 'llama.cpp', cmd: 'npm', args: ['run', '-s', 'build:llama', '--', '--backend', 'cpu'], counts: false },
  { name: 'build native', cmd: 'npm', args: ['run', '-s', 'build:native'], counts: false },
  { name: 'unit', cmd: 'npm', args: ['run', '-s', 'test:unit'] },
  { name: 'native', cmd: 'npm', args: ['run', '-s', 'test:native'] },
  { name: 'native (asan)', cmd: 'bash', args: ['scripts/test-native-asan.sh'] },
  { name: 'webview', cmd: 'npm', args: ['run', '-s', 'test:webview'] },
  { name: 'integration', cmd: 'npm', args: ['run', '-s', 'test:integration'] },
  // The VSIX test (integration) rebuilds dist in production mode; rebuild for the UI suites.
  { name: 'build (dev)', cmd: 'node', args: ['esbuild.mjs'], counts: false },
  { name: 'extension host', cmd: 'npm', args: ['run', '-s', 'test:exthost'] },
  // The same suites in a folder VS Code opens in Restricted Mode: a repository whose settings attack.
  { name: 'exthost untrusted', cmd: 'npm', args: ['run', '-s', 'test:exthost', '--', '--untrusted'] },
  { name: 'e2e', cmd: 'npm', args: ['run', '-s', 'test:e2e'] },
];

const only = process.argv.slice(2);
const results = [];
let passed = 0, failed = 0, skipped = 0;

function run(s) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(s.cmd, s.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let out = '';
    const onData = (stream) => (b) => { out += b.toString(); stream.write(b); };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    child.on('exit', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), out, seconds: (Date.now() - t0) / 1000 }));
    child.on('error', (e) => resolve({ code: 1, out: String(e), seconds: (Date.now() - t0) / 1000 }));
  });
}

function count(out, word) {
  // mocha's spec reporter closes with "  N passing (Xs)", "  N failing", "  N pending".
  const m = [...out.matchAll(new RegExp(`^\\s*(\\d+) ${word}\\b`, 'gm'))];
  return m.reduce((a, x) => a + Number(x[1]), 0);
}

for (const s of suites) {
  if (only.length && !only.includes(s.name)) continue;
  console.log(`\n=== ${s.name} ===`);
  const r = await run(s);
  let p = 0, f = 0, k = 0;
  if (s.counts !== false) {
    p = count(r.out, 'passing'); f = count(r.out, 'failing'); k = count(r.out, 'pending');
    if (r.code !== 0 && f === 0) f = 1; // crashed before reporting
    if (r.code === 0 && p === 0) { console.log(`suite ${s.name} ran no test`); f += 1; }
  } else if (r.code !== 0) {
    f = 1;
  }
  passed += p; failed += f; skipped += k;
  results.push({ name: s.name, seconds: r.seconds, code: r.code, p, f, k });
}

console.log('\n=== summary ===');
for (const r of results) {
  console.log(`${r.name.padEnd(16)} ${r.seconds.toFixed(1).padStart(7)} s  ${r.code === 0 ? 'ok  ' : 'FAIL'}  ${r.p} passed, ${r.f} failed, ${r.k} skipped`);
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
