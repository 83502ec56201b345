// The llama-server flags that Strata passes on from outside input: `strata.server.extraArgs` on
// this machine, and a sidecar's placement request on a peer (src/cluster/agent/placement.ts).
// Only flags that tune speed and memory are allowed. Anything else can load a program or a model
// from a path, write files, send the key elsewhere or make llama-server listen on the network,
// and outside input must not get that: a workspace's settings (issue 13) or a peer's client.
//
// Exact names only (an allowlist: a flag llama.cpp adds later is refused until it is listed). A
// value flag's value must not look like a flag, so that a flag llama.cpp reads as bare (`-fa`
// was bare before it took on|off|auto) cannot smuggle the next item past this check as a value.
// llama.cpp reads `--foo_bar` as `--foo-bar` (common/arg.cpp), so names are compared that way.

/** Flags followed by one value (checked: numbers, cache types, device names, tensor patterns). */
const VALUE_FLAGS = new Set([
  '-c',
  '--ctx-size',
  '-ngl',
  '--n-gpu-layers',
  '--gpu-layers',
  '-fa',
  '--flash-attn',
  '-ctk',
  '--cache-type-k',
  '-ctv',
  '--cache-type-v',
  '-np',
  '--parallel',
  '-b',
  '--batch-size',
  '-ub',
  '--ubatch-size',
  '-t',
  '--threads',
  '-tb',
  '--threads-batch',
  '--cache-reuse',
  '-ts',
  '--tensor-split',
  '-sm',
  '--split-mode',
  '-mg',
  '--main-gpu',
  '-n',
  '--n-predict',
  '-lv',
  '--verbosity',
  '-cd',
  '--ctx-size-draft',
  '-ngld',
  '--n-gpu-layers-draft',
  '--gpu-layers-draft',
  '--draft-max',
  '--draft-min',
  '--draft-p-min',
  '-ctkd',
  '--cache-type-k-draft',
  '-ctvd',
  '--cache-type-v-draft',
  '-dev',
  '--device',
  '-devd',
  '--device-draft',
  '-ot',
  '--override-tensor',
  '-otd',
  '--override-tensor-draft',
  '-ncmoe',
  '--n-cpu-moe',
  '-ncmoed',
  '--n-cpu-moe-draft',
  '-lm',
  '--load-mode',
  '--fit',
  '-fitt',
  '--fit-target',
  '-fitc',
  '--fit-ctx',
  '-cram',
  '--cache-ram',
  '-ctxcp',
  '--ctx-checkpoints',
  '--swa-checkpoints',
  '--keep',
  '--reasoning-format',
  '--reasoning-budget',
  '--chat-template',
]);

/** Flags without a value. */
const BARE_FLAGS = new Set([
  '--jinja',
  '--no-jinja',
  '--no-mmap',
  '--mlock',
  '-cb',
  '--cont-batching',
  '-nocb',
  '--no-cont-batching',
  '--no-webui',
  '--no-repack',
  '--swa-full',
  '--no-warmup',
  '-kvu',
  '--kv-unified',
  '-no-kvu',
  '--no-kv-unified',
  '-nkvo',
  '--no-kv-offload',
  '-cmoe',
  '--cpu-moe',
  '-cmoed',
  '--cpu-moe-draft',
  '--no-context-shift',
  '--context-shift',
]);

/** Why a refused flag is refused, for the error message (families of llama-server's flags; not the check itself). */
const FAMILIES: Array<{ test: RegExp; why: string }> = [
  {
    test: /^(-m|--model|-mu|--model-url|-md|--model-draft|-mv|--model-vocoder|--mmproj(-url)?|--no-mmproj.*|-hf\w*|--hf-[\w-]+|-dr|--docker-repo|--lora[\w-]*|--control-vector[\w-]*|--models-[\w-]+)$/,
    why: 'it picks or downloads a model',
  },
  { test: /^(--api-key[\w-]*|--ssl-[\w-]+)$/, why: "it sets the server's key or certificate" },
  { test: /^(--host|--port|--rpc|--reuse-port|--api-prefix)$/, why: 'it makes llama-server listen or connect elsewhere' },
  { test: /(file|path|dir|cache-(static|dynamic)|^-lc[sd]$|^-o$|^--output$|^-f$|^-bf$)/, why: 'it reads or writes files' },
];

/** A refused flag: `flag` as written, `why` it is refused, and `fix` when the fix is not "leave it out". */
export class ServerFlagError extends Error {
  constructor(
    readonly flag: string,
    readonly why: string,
    readonly fix?: string,
  ) {
    super(`llama-server flag ${JSON.stringify(flag)} is not allowed: ${why}`);
    this.name = 'ServerFlagError';
  }
}

function canonical(flag: string): string {
  return flag.startsWith('--') ? flag.replace(/_/g, '-') : flag;
}

function looksLikeFlag(v: string): boolean {
  // Negative numbers (`-ngl -1`, `--reasoning-budget -1`) are values.
  return /^-[^\d.]/.test(v);
}

function refuse(flag: string): ServerFlagError {
  const eq = flag.indexOf('=');
  const name = canonical(eq > 0 ? flag.slice(0, eq) : flag);
  if (eq > 0 && (VALUE_FLAGS.has(name) || BARE_FLAGS.has(name))) {
    return new ServerFlagError(flag, 'llama-server reads a flag and its value as two items', `write it as "${name}", "${flag.slice(eq + 1)}"`);
  }
  if (!name.startsWith('-')) return new ServerFlagError(flag, 'it is not a flag, and no value flag comes before it');
  const why =
    FAMILIES.find((f) => f.test.test(name))?.why ??
    'it is not one of the flags that only tune speed and memory (context, layers, threads, batch, KV cache, flash attention, tensor placement)';
  return new ServerFlagError(flag, why);
}

/**
 * Checks `args` against the allowlist and returns them with names in llama.cpp's dashed form.
 * `pathFlags` (e.g. the peer's `-md`) take a value that `resolvePath` turns into a checked path.
 * Throws ServerFlagError at the first flag that is refused.
 */
export function checkServerFlags(args: readonly string[], opts: { pathFlags?: ReadonlySet<string>; resolvePath?: (value: string) => string } = {}): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const raw = args[i];
    const a = canonical(raw);
    if (BARE_FLAGS.has(a)) {
      out.push(a);
      continue;
    }
    const isPath = !!opts.pathFlags?.has(a) && !!opts.resolvePath;
    if (!VALUE_FLAGS.has(a) && !isPath) throw refuse(raw);
    const v = args[i + 1];
    if (v === undefined) throw new ServerFlagError(raw, 'it needs a value after it');
    if (looksLikeFlag(v)) throw new ServerFlagError(raw, `its value ${JSON.stringify(v)} looks like a flag`);
    out.push(a, isPath ? opts.resolvePath!(v) : v);
    i++;
  }
  return out;
}
