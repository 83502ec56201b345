// Shares of busy time in a V8 CPU profile (.cpuprofile, e.g. from
// `bench/cluster-tunnel-throughput.ts --profile FILE`), by what the sampled frame was doing:
//
//   npx tsx bench/cpu-profile-shares.ts FILE.cpuprofile
//
// Each sample counts for the frame on top of the stack (self time). A native frame (no script
// URL) takes the script of the frame that called it: `update` called from node's cipher code is
// encryption, `set` called from node's buffer code is a copy. The rules, in this order:
//   idle          (idle): the event loop waiting; left out of "busy"
//   GC            (garbage collector)
//   socket writes node's native write bindings (writeBuffer, writev, write*String) and
//                 stream_base_commons' write functions
//   AES-GCM       anything in node:crypto / internal/crypto (createDecipheriv, update, final, ...)
//   buffer copies anything in node:buffer / internal/buffer (concat, copy, alloc, subarray, ...)
//   other         the rest: the tunnel's own JavaScript, streams, events, (program)
import * as fs from 'fs';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const NATIVE_WRITES = new Set(['writeBuffer', 'writev', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'writeUcs2String']);

export type Category = 'idle' | 'GC' | 'socket writes' | 'AES-GCM' | 'buffer copies' | 'other';

export function categorize(frame: CallFrame, caller?: CallFrame): Category {
  const name = frame.functionName;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'GC';
  if (NATIVE_WRITES.has(name) && !frame.url) return 'socket writes';
  const url = frame.url || caller?.url || '';
  if (/stream_base_commons/.test(url) && /^write/i.test(name)) return 'socket writes';
  if (/(^node:crypto$|internal\/crypto\/)/.test(url)) return 'AES-GCM';
  if (/(^node:buffer$|internal\/buffer)/.test(url)) return 'buffer copies';
  return 'other';
}

export function shares(p: Profile): { samples: number; busy: number; byCategory: Map<Category, number> } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byCategory = new Map<Category, number>();
  for (const id of p.samples) {
    const node = byId.get(id)!;
    const up = parent.get(id);
    const cat = categorize(node.callFrame, up === undefined ? undefined : byId.get(up)!.callFrame);
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + 1);
  }
  return { samples: p.samples.length, busy: p.samples.length - (byCategory.get('idle') ?? 0), byCategory };
}

function main(): void {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: npx tsx bench/cpu-profile-shares.ts FILE.cpuprofile');
    process.exit(2);
  }
  const r = shares(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile);
  console.log(`${file}: ${r.samples} samples, ${r.busy} busy (${((100 * r.busy) / r.samples).toFixed(1)} %)`);
  console.log('| share of busy time | % |\n|---|---|');
  const order: Category[] = ['socket writes', 'AES-GCM', 'GC', 'buffer copies', 'other'];
  for (const c of order) console.log(`| ${c} | ${((100 * (r.byCategory.get(c) ?? 0)) / r.busy).toFixed(1)} |`);
}

if (require.main === module) main();
