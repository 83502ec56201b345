import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { localNodeHeaders } from '../harness/codeServer';
import { skipBecause } from '../harness/skips';

// code-server's native modules are built by node-gyp during its install. On a machine that reaches
// the npm registry and nothing else (CI's, a bare Debian chroot), node-gyp's default, downloading
// the Node headers from nodejs.org, fails; the install must use the headers next to the Node that
// runs it. This runs npm's own node-gyp with the environment the install gives it, against a
// download URL that cannot answer, and an empty HOME (no cached headers).

const NODE_GYP = path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const HEADERS = path.resolve(path.dirname(process.execPath), '..', 'include', 'node', 'node_version.h');

describe("code-server's install builds native modules against the local Node headers", function () {
  this.timeout(60_000);
  let tmp: string;

  before(function () {
    if (!fs.existsSync(NODE_GYP) || !fs.existsSync(HEADERS)) {
      skipBecause(this, `this Node install has no bundled node-gyp or no include/node headers (${NODE_GYP}, ${HEADERS})`);
    }
  });
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-gyp-'));
    fs.writeFileSync(path.join(tmp, 'binding.gyp'), JSON.stringify({ targets: [{ target_name: 'probe', sources: ['probe.cc'] }] }));
    fs.writeFileSync(path.join(tmp, 'probe.cc'), '#include <node.h>\n');
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('node-gyp configure succeeds without reaching a headers download', () => {
    // Only PATH from the caller: an npm_config_nodedir there (an .npmrc's) would hide what is tested.
    const env = { PATH: process.env.PATH, HOME: tmp, npm_config_dist_url: 'http://127.0.0.1:9/unreachable', ...localNodeHeaders({}) };
    const r = spawnSync(process.execPath, [NODE_GYP, 'configure'], { cwd: tmp, env, encoding: 'utf8', timeout: 50_000 });
    assert.strictEqual(r.status, 0, `node-gyp configure failed:\n${r.stderr}`);
    assert.ok(fs.existsSync(path.join(tmp, 'build', 'Makefile')), 'node-gyp configure wrote no build/Makefile');
  });
});
