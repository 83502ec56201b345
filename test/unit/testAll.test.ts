import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// scripts/test-all.mjs (what `npm test` runs) on a real mocha suite that skips: the summary names
// each skipped test with its reason, and under CI=true a skip that the allowlist does not name
// fails the run. The suite is test/fixtures/skips/skipping.fixture.ts, through the same
// .mocharc.json (reporter) as every suite.

const ROOT = path.resolve(__dirname, '../..');
const MOCHA = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');

describe('test-all: skipped tests are counted, explained and budgeted', function () {
  this.timeout(60_000);
  let tmp: string;
  const runDirs: string[] = [];
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-testall-'));
  });
  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
    for (const d of runDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  function testAll(env: Record<string, string>): { code: number | null; out: string; summary: string } {
    const suites = [{ name: 'fixture', cmd: process.execPath, args: [MOCHA, 'test/fixtures/skips/skipping.fixture.ts'] }];
    const r = spawnSync(process.execPath, ['scripts/test-all.mjs'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 50_000,
      env: { ...process.env, STRATA_SKIP_PREREQUISITES: '1', STRATA_TEST_ALL_SUITES: JSON.stringify(suites), CI: '', ...env },
    });
    const out = `${r.stdout}${r.stderr}`;
    const dir = /^all logs and skip reports: (.+)$/m.exec(r.stdout)?.[1];
    if (dir) runDirs.push(path.resolve(ROOT, dir));
    return { code: r.status, out, summary: r.stdout.slice(r.stdout.indexOf('=== summary ===')) };
  }

  const REASONS = [
    'skipped: skip fixture needs another OS (needs Windows)',
    'skipped: skip fixture a guarded block first (needs a moon)',
    'skipped: skip fixture a guarded block second (needs a moon)',
  ];

  it('the summary lists every skipped test of a suite with its reason, and keeps the closing line', () => {
    const r = testAll({});
    assert.strictEqual(r.code, 0, r.out);
    const lines = r.summary.split('\n').map((l) => l.trim());
    assert.match(lines[1], /^fixture\s+[\d.]+ s\s+ok\s+1 passed, 0 failed, 3 skipped$/);
    assert.deepStrictEqual(lines.slice(2, 5), REASONS);
    assert.strictEqual(lines.filter(Boolean).pop(), '1 passed, 0 failed, 3 skipped');
  });

  it('with CI=true, a skip missing from the allowlist fails the run, naming it', () => {
    const allow = path.join(tmp, 'allow-one.json');
    fs.writeFileSync(allow, JSON.stringify({ skips: [{ test: 'skip fixture needs another OS', reason: 'needs Windows' }] }));
    const r = testAll({ CI: 'true', STRATA_SKIP_ALLOWLIST: allow });
    assert.strictEqual(r.code, 1, r.out);
    assert.match(r.summary, /^CI: these 2 skips are not on .*allow-one\.json, so each counts as a failure/m);
    assert.match(r.summary, /^ {2}\[fixture\] skip fixture a guarded block first \(needs a moon\)$/m);
    assert.match(r.summary, /^ {2}\[fixture\] skip fixture a guarded block second \(needs a moon\)$/m);
    assert.doesNotMatch(r.summary, /^ {2}\[fixture\] skip fixture needs another OS/m);
    assert.match(r.summary, /\n1 passed, 2 failed, 3 skipped\n$/);
  });

  it('with CI=true, skips the allowlist names (a test, or a whole describe) pass', () => {
    const allow = path.join(tmp, 'allow-all.json');
    fs.writeFileSync(
      allow,
      JSON.stringify({
        skips: [
          { test: 'skip fixture needs another OS', reason: 'needs Windows' },
          { test: 'skip fixture a guarded block', reason: 'no moon in CI' },
        ],
      }),
    );
    const r = testAll({ CI: 'true', STRATA_SKIP_ALLOWLIST: allow });
    assert.strictEqual(r.code, 0, r.out);
    assert.match(r.summary, /\n1 passed, 0 failed, 3 skipped\n$/);
  });

  it('an allowlist entry without a reason is refused', () => {
    const allow = path.join(tmp, 'allow-bad.json');
    fs.writeFileSync(allow, JSON.stringify({ skips: [{ test: 'skip fixture needs another OS' }] }));
    const r = testAll({ CI: 'true', STRATA_SKIP_ALLOWLIST: allow });
    assert.notStrictEqual(r.code, 0);
    assert.match(r.out, /every entry needs "test" .* and a "reason"/);
  });

  it("the repository's allowlist gives every entry a reason", () => {
    const list = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'skip-allowlist.json'), 'utf8')) as { skips: { test: string; reason: string }[] };
    for (const e of list.skips) assert.ok(e.test && e.reason?.trim(), JSON.stringify(e));
  });
});
