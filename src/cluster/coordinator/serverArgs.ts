// Reading and rewriting llama-server's command line where the cluster changes it: a split adds
// --rpc, -ngl and --tensor-split in place of the window's own, and sizes the split for the
// context the window asked for (-c).

/** Whether any of these flags is present (as `--flag value` or `--flag=value`). */
export function hasFlag(args: readonly string[], names: string[]): boolean {
  return args.some((a) => names.includes(a) || names.some((n) => a.startsWith(`${n}=`)));
}

/** Drops these flags and their values. */
export function stripFlags(args: readonly string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (names.includes(args[i])) {
      i++;
      continue;
    }
    if (names.some((n) => args[i].startsWith(`${n}=`))) continue;
    out.push(args[i]);
  }
  return out;
}

/** The context size the args ask for (-c, --ctx-size), when they do. */
export function ctxOf(args: readonly string[]): number | undefined {
  for (let i = 0; i < args.length; i++) {
    if ((args[i] === '-c' || args[i] === '--ctx-size') && i + 1 < args.length) return Number(args[i + 1]) || undefined;
    const m = /^--ctx-size=(\d+)$/.exec(args[i]);
    if (m) return Number(m[1]);
  }
  return undefined;
}
