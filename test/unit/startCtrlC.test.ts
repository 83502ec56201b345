import * as assert from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// Ctrl+C on `npm start` must let scripts/start.ts finish its handler (stop code-server, then ask
// the sidecar to stop with its llama-server). A terminal's Ctrl+C signals the whole foreground
// process group: npm, sh, the launcher and the script. tsx's CLI launcher, when the script does not
// acknowledge the signal within 30 ms, sends it again and then SIGKILLs the script: on a busy
// machine the handler never ran and the sidecar kept the model loaded until its idle exit. This
// runs package.json's real "start" command line on a program with a slow handler and a busy event
// loop, and sends SIGINT to the group as a terminal would.

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'ctrlc', 'slowCleanup.ts');

describe('npm start: Ctrl+C lets the start script finish its cleanup', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ctrlc-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the script under the "start" command line finishes its SIGINT handler on a busy event loop', async () => {
    const start = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    assert.ok(start.includes('scripts/start.ts'), `package.json's start script no longer runs scripts/start.ts: ${start}`);
    const cmd = `${start.replace('scripts/start.ts', JSON.stringify(FIXTURE))} ${JSON.stringify(dir)}`;
    const env = { ...process.env, PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}` };
    const child = spawn('sh', ['-c', cmd], { cwd: ROOT, env, detached: true, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    try {
      for (let i = 0; i < 200 && !fs.existsSync(path.join(dir, 'ready')); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(fs.existsSync(path.join(dir, 'ready')), `the start command did not run the fixture: ${cmd}`);
      process.kill(-child.pid!, 'SIGINT');
      await exited;
      const scriptPid = Number(fs.readFileSync(path.join(dir, 'ready'), 'utf8'));
      for (let i = 0; i < 40 && !fs.existsSync(path.join(dir, 'cleaned')); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(fs.existsSync(path.join(dir, 'cleaned')), `the script (pid ${scriptPid}) was killed before its Ctrl+C handler finished (command: ${start})`);
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
});
