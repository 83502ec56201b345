import * as assert from 'assert';
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { checkPrerequisites } from '../../scripts/prerequisites.mjs';
import { skipBecause } from '../harness/skips';

// The README's two commands on a machine that lacks system packages, run for real: the package
// list gets names that dpkg does not know (STRATA_PREREQUISITES_EXTRA), so the real dpkg lookup
// misses them, and the commands run as an unprivileged user (setpriv, when the tests run as root),
// so they cannot install anything and must stop at once with one message.

const ROOT = path.resolve(__dirname, '../..');
const MISSING = ['strata-missing-tool-a', 'strata-missing-lib-b'];
const NOBODY = 65534;

function findOnPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, bin)));
}

describe('prerequisites: the README commands on a machine that lacks packages', function () {
  this.timeout(60_000);
  let home: string;
  before(function () {
    if (process.platform !== 'linux') skipBecause(this, 'needs Linux: dpkg and setpriv');
    if (!findOnPath('dpkg-query')) skipBecause(this, 'needs dpkg (Debian/Ubuntu): the check looks packages up there');
    if (process.getuid!() === 0 && !findOnPath('setpriv'))
      skipBecause(this, 'setpriv (util-linux) is missing: the tests run as root and need it to drop to an unprivileged user');
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-prereq-home-'));
    fs.chmodSync(home, 0o777);
  });
  after(() => {
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  /** Runs a command in the repo as an unprivileged user, with the extra (unknown) packages required. */
  function asUser(cmd: string, args: string[]): SpawnSyncReturns<string> & { ms: number } {
    const env = {
      ...process.env,
      HOME: home,
      npm_config_cache: path.join(home, 'npm-cache'),
      npm_config_update_notifier: 'false',
      STRATA_PREREQUISITES_EXTRA: MISSING.join(' '),
      STRATA_SKIP_PREREQUISITES: '',
      CI: '',
    };
    const drop = process.getuid!() === 0 ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'] : [];
    const argv = [...drop, cmd, ...args];
    const t0 = Date.now();
    const r = spawnSync(argv[0], argv.slice(1), { cwd: ROOT, env, encoding: 'utf8', timeout: 50_000 });
    return { ...r, ms: Date.now() - t0 };
  }

  function assertStoppedWithOneMessage(r: SpawnSyncReturns<string> & { ms: number }, command: string): void {
    const all = `${r.stdout}${r.stderr}`;
    assert.strictEqual(r.status, 1, all);
    const msg = r.stderr.slice(r.stderr.indexOf('`'));
    assert.match(msg, new RegExp(`^\`${command}\` cannot run on this machine yet; it needs:\n`));
    for (const m of MISSING) assert.match(msg, new RegExp(`^  - ${m}: `, 'm'), `${m} is not listed:\n${msg}`);
    // Every missing package in one command, which the user can paste.
    assert.match(msg, new RegExp(`^  sudo apt-get update && sudo apt-get install -y ${MISSING.join(' ')}\n`, 'm'), msg);
    assert.strictEqual(msg.match(/cannot run on this machine yet/g)?.length, 1, 'one message');
    assert.doesNotMatch(all, /^\s+at .+:\d+:\d+\)?$/m, 'a stack trace');
    assert.ok(r.ms < 20_000, `took ${r.ms} ms: it must stop before building anything`);
  }

  it('`npm test` stops before any suite, naming every missing package and the command that installs them', () => {
    const r = asUser('npm', ['test']);
    assertStoppedWithOneMessage(r, 'npm test');
    assert.doesNotMatch(r.stdout, /=== typecheck ===/, 'a suite started');
  });

  it('`npm start` stops before building, with the same message', () => {
    const r = asUser('npm', ['start']);
    assertStoppedWithOneMessage(r, 'npm start');
    assert.doesNotMatch(r.stdout, /building the extension/, 'the build started');
  });

  it("as root with apt-get it tries to install them, saying what and why on one line, then stops with apt's error", function () {
    if (process.getuid!() !== 0 || !findOnPath('apt-get')) skipBecause(this, 'needs root and apt-get (CI has both)');
    this.timeout(300_000);
    const r = spawnSync(process.execPath, ['scripts/prerequisites.mjs', 'test'], {
      cwd: ROOT,
      env: { ...process.env, STRATA_PREREQUISITES_EXTRA: MISSING.join(' '), STRATA_SKIP_PREREQUISITES: '' },
      encoding: 'utf8',
      timeout: 280_000,
    });
    assert.strictEqual(r.status, 1, `${r.stdout}${r.stderr}`);
    const installing = r.stdout.split('\n').filter((l) => l.startsWith('[strata] installing'));
    assert.deepStrictEqual(installing, [
      `[strata] installing ${MISSING.join(' ')} with apt-get, which npm test needs: ${MISSING.map((m) => `${m} (named in STRATA_PREREQUISITES_EXTRA)`).join(', ')}`,
    ]);
    assert.match(r.stderr, /^apt-get could not install them: E: Unable to locate package strata-missing-tool-a \(full output: .+\)$/m);
    assert.match(r.stderr, new RegExp(`^  apt-get update && apt-get install -y ${MISSING.join(' ')}$`, 'm'));
  });

  it('counts a package dpkg has installed as present, and an unknown one as missing', () => {
    // dpkg itself is installed wherever dpkg-query runs.
    const { missing } = checkPrerequisites('test', { ...process.env, STRATA_PREREQUISITES_EXTRA: `dpkg ${MISSING[0]}` });
    assert.deepStrictEqual(
      missing.filter((m) => m.pkg === 'dpkg' || m.pkg === MISSING[0]).map((m) => m.pkg),
      [MISSING[0]],
    );
  });
});
