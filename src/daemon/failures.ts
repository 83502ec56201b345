import * as fs from 'fs';
import * as path from 'path';
import { ErrorCode, ErrorInfo, ServerPlan } from '../core/protocol';
import { isPortTaken } from './ports';

// Turning "it did not work" into one sentence a user can act on. Checks that can run before a
// start (is the binary there, is the model a GGUF file, is a fixed port free) run first, because
// llama-server's own messages for these are buried in hundreds of log lines; what can only be
// seen after the fact is classified from the last lines it printed.

export class SupervisorError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

export function fail(code: ErrorCode, message: string, logTail?: string[]): SupervisorError {
  return new SupervisorError(logTail && logTail.length ? { code, message, logTail } : { code, message });
}

export async function preflight(plan: ServerPlan): Promise<void> {
  const bin = plan.binaryPath;
  let st: fs.Stats;
  try {
    st = fs.statSync(bin);
  } catch {
    throw fail('binary-not-found', `llama-server was not found at ${bin}: install llama.cpp or set "strata.server.path" to its llama-server.`);
  }
  if (!st.isFile()) throw fail('binary-not-found', `${bin} is not a file: set "strata.server.path" to the llama-server executable itself.`);
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw fail('binary-not-executable', `${bin} is not executable: run "chmod +x ${bin}" or pick another llama-server.`);
  }
  const model = plan.modelPath;
  let fd: number;
  try {
    fd = fs.openSync(model, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw fail(
      'model-not-found',
      code === 'ENOENT'
        ? `The model file ${model} does not exist: download it again or pick another model.`
        : `The model file ${model} cannot be read (${code}): check its permissions.`,
    );
  }
  try {
    const magic = Buffer.alloc(4);
    const n = fs.readSync(fd, magic, 0, 4, 0);
    if (n < 4 || magic.toString('latin1') !== 'GGUF') {
      throw fail(
        'model-load-failed',
        `${path.basename(model)} is not a GGUF model (it does not start with "GGUF"): it is corrupt or another format; download it again.`,
      );
    }
  } finally {
    fs.closeSync(fd);
  }
  if (plan.port !== undefined && (await isPortTaken(plan.port))) {
    throw fail('port-in-use', `Port ${plan.port} on 127.0.0.1 is already in use by another program: stop that program or let Strata pick a free port.`);
  }
}

export type ExitKind = 'port-in-use' | 'bad-arguments' | 'model-load-failed' | 'crash';

/** What an unexpected exit means, judged from the last lines llama-server printed. */
export function classifyExit(tail: string[]): ExitKind {
  const text = tail.join('\n');
  if (/couldn't bind HTTP server socket|address already in use/i.test(text)) return 'port-in-use';
  if (/error: invalid argument|error while handling argument|unknown argument/i.test(text)) return 'bad-arguments';
  if (
    /failed to load model|error loading model|llama_model_load: error|gguf_init_from_file|failed to read (magic|header|tensor)|invalid magic|exiting due to model loading error/i.test(
      text,
    )
  ) {
    return 'model-load-failed';
  }
  return 'crash';
}

/** The error for a start that failed before llama-server ran: its binary could not be executed. */
export function spawnFailure(binaryPath: string, err: NodeJS.ErrnoException): SupervisorError {
  return err.code === 'EACCES'
    ? fail('binary-not-executable', `${binaryPath} could not be run (EACCES): make it executable or pick another llama-server.`)
    : fail('binary-not-found', `llama-server could not be started from ${binaryPath} (${err.code ?? err.message}): check "strata.server.path".`);
}

/** The error for an exit that a restart would not fix; `how` is describeExit's words. */
export function exitFailure(kind: Exclude<ExitKind, 'crash'>, plan: ServerPlan, tail: string[], how: string): SupervisorError {
  switch (kind) {
    case 'port-in-use':
      return fail(
        'port-in-use',
        `llama-server could not listen on port ${plan.port ?? '(chosen)'}: another program uses it; stop that program or let Strata pick a free port.`,
        tail,
      );
    case 'bad-arguments':
      return fail(
        'bad-arguments',
        `llama-server rejected its command line (${firstMatch(tail, /error[^|]*/i) ?? how}): check the server flags in Strata's settings.`,
        tail,
      );
    case 'model-load-failed':
      return fail(
        'model-load-failed',
        `llama-server could not load ${path.basename(plan.modelPath)}: the file is corrupt or truncated, needs a newer llama.cpp, or does not fit in memory; see the last log lines.`,
        tail,
      );
  }
}

export function crashLoopFailure(how: string, crashes: number, tail: string[]): SupervisorError {
  const last = tail.slice(-3).join(' | ') || '(it printed nothing)';
  return fail('crash-loop', `llama-server ${how} ${crashes} times in a row, so Strata stopped restarting it. Its last lines: ${last}`, tail);
}

function firstMatch(lines: string[], re: RegExp): string | undefined {
  for (const l of lines) {
    const m = re.exec(l);
    if (m) return m[0].trim().slice(0, 200);
  }
  return undefined;
}

export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code}`;
}

/** Lines worth quoting: the end of the log, skipping blank ones. */
export function lastLines(lines: string[], n = 12): string[] {
  return lines.filter((l) => l.trim() !== '').slice(-n);
}
