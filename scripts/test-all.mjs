#!/usr/bin/env node
// Runs every test suite in order, each in its own process, and prints how long each took, the
// skipped tests of each suite with their reasons, and one closing line
// "N passed, N failed, N skipped" that CI reads. A suite that crashes before mocha reports counts
// as a failure. Prerequisites (llama.cpp build, test models, code-server) are built by the suites
// themselves through cached, idempotent helpers; the machine's own (Node, OS packages) are
// checked first by prerequisites.mjs.
//
// Skips: every mocha run writes its pending tests and their reasons (test/harness/skips.ts) into
// the suite's folder under .test-artifacts/test-all-<time>/, next to the suite's full log. With
// CI=true a skip that test/skip-allowlist.json does not list fails the run.
// For test/unit/testAll.test.ts: STRATA_TEST_ALL_SUITES (JSON [{name, cmd, args}]) replaces the
// suites and STRATA_SKIP_ALLOWLIST (a file) the allowlist.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { fileURLToPath } from 'url';
import { ensurePrerequisites } from './prerequisites.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
ensurePrerequisites('test');

const defaultSuites = [
  { name: 'typecheck', cmd: 'npx', args: ['tsc', '-p', '.', '--noEmit'], counts: false },
  { name: 'lint', cmd: 'npm', args: ['run', '-s', 'lint'], counts: false },
  // One formatting (.prettierrc), so that a diff shows a change, not a re-indent.
  { name: 'format', cmd: 'npm', args: ['run', '-s', 'format:check'], counts: false },
  { name: 'build', cmd: 'node', args: ['esbuild.mjs'], counts: false },
  // Build (or find cached) llama.cpp before any suite, so that no test's hook pays the cold build.
  { name: 'llama.cpp', cmd: 'npm', args: ['run', '-s', 'build:llama', '--', '--backend', 'cpu'], counts: false },
  // The Vulkan build for the tests on Mesa's lavapipe (test/integration/vulkan.test.ts), cached
  // like the CPU one; a cold one cost 24 min on the busy 2-core VM, ~1.8x the CPU build
  // (bench/RESULTS.md, "Cold Vulkan build").
  { name: 'llama.cpp (vulkan)', cmd: 'npm', args: ['run', '-s', 'build:llama', '--', '--backend', 'vulkan'], counts: false },
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

const suites = process.env.STRATA_TEST_ALL_SUITES ? JSON.parse(process.env.STRATA_TEST_ALL_SUITES) : defaultSuites;
const only = process.argv.slice(2);
const runDir = path.join(root, '.test-artifacts', `test-all-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const slug = (name) => name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');

function run(s, logFile, skipDir) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const log = fs.createWriteStream(logFile);
    const env = { ...process.env, FORCE_COLOR: '0', STRATA_SKIP_REPORT_DIR: skipDir };
    const child = spawn(s.cmd, s.args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    const onData = (stream) => (b) => {
      out += b.toString();
      stream.write(b);
      log.write(b);
    };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    const done = (code, text) => log.end(() => resolve({ code, out: out + text, seconds: (Date.now() - t0) / 1000 }));
    child.on('exit', (code, signal) => done(code ?? (signal ? 1 : 0), ''));
    child.on('error', (e) => done(1, String(e)));
  });
}

function count(out, word) {
  // mocha's spec reporter closes with "  N passing (Xs)", "  N failing", "  N pending".
  const m = [...out.matchAll(new RegExp(`^\\s*(\\d+) ${word}\\b`, 'gm'))];
  return m.reduce((a, x) => a + Number(x[1]), 0);
}

/** The pending tests the suite's mocha runs recorded, padded to the count mocha printed. */
function skipsOf(skipDir, pendingCount) {
  const list = [];
  for (const f of fs.existsSync(skipDir) ? fs.readdirSync(skipDir).sort() : []) {
    if (f.endsWith('.json')) list.push(...JSON.parse(fs.readFileSync(path.join(skipDir, f), 'utf8')));
  }
  for (let i = list.length; i < pendingCount; i++) {
    list.push({ title: '(unknown test)', reason: 'mocha counted a pending test that no skip report names (a runner without test/harness/skipReporter.ts)' });
  }
  return list;
}

/** test/skip-allowlist.json: skips CI accepts, each with why. An entry names a test or a describe (title prefix). */
function loadAllowlist() {
  const file = process.env.STRATA_SKIP_ALLOWLIST || path.join(root, 'test', 'skip-allowlist.json');
  const entries = JSON.parse(fs.readFileSync(file, 'utf8')).skips;
  for (const e of entries) {
    if (typeof e.test !== 'string' || typeof e.reason !== 'string' || !e.reason.trim()) {
      throw new Error(`${file}: every entry needs "test" (a full title or describe title) and a "reason"; this one has not: ${JSON.stringify(e)}`);
    }
  }
  return entries;
}

const allowed = (allowlist, skip) => allowlist.some((e) => skip.title === e.test || skip.title.startsWith(`${e.test} `));

const results = [];
let passed = 0,
  failed = 0,
  skipped = 0;
for (const s of suites) {
  if (only.length && !only.includes(s.name)) continue;
  console.log(`\n=== ${s.name} ===`);
  const dir = path.join(runDir, slug(s.name));
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, 'output.log');
  const r = await run(s, logFile, path.join(dir, 'skips'));
  let p = 0,
    f = 0,
    k = 0,
    skips = [];
  if (s.counts !== false) {
    p = count(r.out, 'passing');
    f = count(r.out, 'failing');
    k = count(r.out, 'pending');
    if (r.code !== 0 && f === 0) f = 1; // crashed before reporting
    if (r.code === 0 && p === 0) {
      console.log(`suite ${s.name} ran no test`);
      f += 1;
    }
    skips = skipsOf(path.join(dir, 'skips'), k);
  } else if (r.code !== 0) {
    f = 1;
  }
  passed += p;
  failed += f;
  skipped += k;
  results.push({ name: s.name, seconds: r.seconds, code: r.code, p, f, k, skips, logFile });
}

console.log('\n=== summary ===');
const rel = (f) => path.relative(root, f);
for (const r of results) {
  console.log(
    `${r.name.padEnd(16)} ${r.seconds.toFixed(1).padStart(7)} s  ${r.code === 0 ? 'ok  ' : 'FAIL'}  ${r.p} passed, ${r.f} failed, ${r.k} skipped${r.code === 0 ? '' : `  (log: ${rel(r.logFile)})`}`,
  );
  for (const sk of r.skips) console.log(`${''.padEnd(18)}skipped: ${sk.title} (${sk.reason})`);
}
if (process.env.CI === 'true') {
  let allowlist = [];
  try {
    allowlist = loadAllowlist();
  } catch (e) {
    console.log(`CI: ${e.message}`);
    failed += 1;
  }
  const unlisted = results.flatMap((r) => r.skips.filter((sk) => !allowed(allowlist, sk)).map((sk) => ({ suite: r.name, ...sk })));
  if (unlisted.length) {
    console.log(
      `CI: ${unlisted.length === 1 ? 'this skip is' : `these ${unlisted.length} skips are`} not on ${rel(process.env.STRATA_SKIP_ALLOWLIST || 'test/skip-allowlist.json')}, so each counts as a failure (make the test run here, or list it with the reason):`,
    );
    for (const u of unlisted) console.log(`  [${u.suite}] ${u.title} (${u.reason})`);
    failed += unlisted.length;
  }
}
console.log(`all logs and skip reports: ${rel(runDir)}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
