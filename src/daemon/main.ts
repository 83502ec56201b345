// Sidecar daemon entry point (bundled to dist/sidecar.js). Started detached by the first window
// that needs it (see src/core/daemonClient/launcher.ts), with stdout/stderr going to the log file.
import { parseDaemonArgs } from './config';
import { Daemon, EXIT_ALREADY_RUNNING } from './daemon';

async function main(): Promise<void> {
  const cfg = parseDaemonArgs(process.argv.slice(2));
  const daemon = new Daemon(cfg);
  if (!(await daemon.start())) process.exit(EXIT_ALREADY_RUNNING);
}

main().catch((e: unknown) => {
  process.stderr.write(`${new Date().toISOString()} E [${process.pid}] sidecar failed to start: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
