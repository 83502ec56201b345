// Helper process for the installer tests: a second, independent lock holder or builder.
//   child.ts lock <target> <holdMs> <staleMs>   prints "locked" once it holds the lock
//   child.ts build <json LlamaBuildOptions>     prints the LlamaBuild (or the error) as JSON
import { ensureLlamaBuild, LlamaBuildOptions } from '../../../src/daemon/installer/llamaBuild';
import { withLock } from '../../../src/daemon/installer/cacheLock';

async function main(): Promise<void> {
  const [mode, a, b, c] = process.argv.slice(2);
  if (mode === 'lock') {
    await withLock(a!, { what: 'child', staleMs: Number(c) }, async () => {
      process.stdout.write('locked\n');
      await new Promise((r) => setTimeout(r, Number(b)));
    });
    process.stdout.write('released\n');
  } else if (mode === 'build') {
    const opts = JSON.parse(a!) as LlamaBuildOptions;
    try {
      const r = await ensureLlamaBuild(opts);
      process.stdout.write(JSON.stringify(r) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ error: (err as Error).message }) + '\n');
    }
  }
}

void main();
