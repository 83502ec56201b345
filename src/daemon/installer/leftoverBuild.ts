import * as fsp from 'fs/promises';
import * as path from 'path';

// A build dir is worked in by one lock holder at a time; one killed hard can leave its compilers
// running there. The next holder stops them before it resumes the build.

// /proc/<pid>/comm names (15 chars at most) of what a cmake build runs.
const BUILD_TOOL_COMM =
  /^(cmake|g?make|ninja|sh|dash|cc1|cc1plus|cc|c\+\+|gcc|g\+\+|.*-g(cc|\+\+)(-\d+)?|clang(\+\+)?(-\d+)?|as|ld|ld\.\w+|collect2|lto1|lto-wrapper|nvcc|cicc|ptxas|fatbinary|nvlink|cudafe\+\+|hipcc|glslc|vulkan-shaders-?.*)$/;

/**
 * Kills what an earlier, dead holder of the lock left compiling here (its own process group
 * survives it when it was killed hard), so that two makes never write the same objects. We hold
 * the lock, so every process whose cwd is in this build dir is such a leftover. Linux only (it
 * reads /proc); elsewhere a leftover simply finishes on its own.
 */
export async function killLeftoverBuild(buildDir: string): Promise<void> {
  if (process.platform !== 'linux') return;
  const dir = await fsp.realpath(buildDir).catch(() => undefined);
  if (!dir) return;
  const pids = await fsp.readdir('/proc').catch(() => [] as string[]);
  const found: number[] = [];
  for (const pid of pids) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cwd = await fsp.readlink(`/proc/${pid}/cwd`);
      if (cwd !== dir && !cwd.startsWith(dir + path.sep)) continue;
      // Only build tools: a user's shell or a llama-server started from bin/ also sits here.
      const comm = (await fsp.readFile(`/proc/${pid}/comm`, 'utf8')).trim();
      if (BUILD_TOOL_COMM.test(comm)) found.push(Number(pid));
    } catch {
      /* gone, or not ours to read */
    }
  }
  if (!found.length) return;
  const signalAll = (sig: NodeJS.Signals | 0): number[] =>
    found.filter((pid) => {
      try {
        process.kill(pid, sig);
        return true;
      } catch {
        return false;
      }
    });
  // SIGTERM first: make then deletes the half-written objects it was producing, which would
  // otherwise look up to date and break the resumed build's link.
  signalAll('SIGTERM');
  for (let i = 0; i < 50 && signalAll(0).length; i++) await new Promise((r) => setTimeout(r, 100));
  signalAll('SIGKILL');
}
