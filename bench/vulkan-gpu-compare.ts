// The same Vulkan device in three views, from the raw outputs of `bash bench/vulkan-gpu.sh probe`
// (on the GPU machine, or here on lavapipe): llama-server --list-devices of the Vulkan build, the
// native probe (strata_probe: the addon's probe code without Node, so the JSON probeAccelerators()
// hands the planner), and the planner's device list computed here from them the way the extension
// does (machineFromProbe: from the probe alone, and with --list-devices as when the binary is known).
// Name and total memory must match exactly; free memory is read a moment apart by each view, so it
// agrees within 1 % (and the table shows the difference).
//
//   npx tsx bench/vulkan-gpu-compare.ts <out folder>     (probe-vulkan.json, list-devices-vulkan.txt;
//                                                         probe-all.json, nvidia-smi.csv shown when present)
// Exit status 1 when a view disagrees.

import * as fs from 'fs';
import * as path from 'path';
import { machineFromProbe } from '../src/core/models/planner/devices';
import type { AcceleratorProbe } from '../src/core/native/types';
import { parseListDevices } from '../src/daemon/installer/findLlamaServer';

const MiB = 1024 * 1024;

interface View {
  view: string;
  id: string;
  name: string;
  totalMiB: number | undefined;
  freeMiB: number | undefined;
}

function main(dir: string): number {
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  const has = (f: string) => fs.existsSync(path.join(dir, f));
  const probe = { ...(JSON.parse(read('probe-vulkan.json')) as Omit<AcceleratorProbe, 'via'>), via: 'native' } as AcceleratorProbe;
  const listedAll = parseListDevices(read('list-devices-vulkan.txt'));
  const listed = listedAll.filter((d) => d.backend === 'Vulkan');
  const probed = probe.devices.filter((d) => d.backend === 'vulkan');
  const fromProbe = machineFromProbe(probe).devices;
  const fromList = machineFromProbe(probe, { listed: listedAll }).devices;
  const mib = (b: number | null | undefined) => (b == null ? undefined : Math.floor(b / MiB));

  let bad = listed.length === 0 || listed.length !== probed.length;
  if (bad) console.log(`device count differs: --list-devices ${listed.length} Vulkan device(s), probe ${probed.length}`);
  console.log('| device | view | name | total MiB | free MiB (planner: budget) | agrees with --list-devices |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (let i = 0; i < Math.max(listed.length, probed.length); i++) {
    const ref: View | undefined = listed[i] && {
      view: 'llama-server --list-devices',
      id: listed[i].name,
      name: listed[i].description,
      totalMiB: listed[i].totalMiB,
      freeMiB: listed[i].freeMiB,
    };
    const views: View[] = [];
    if (ref) views.push(ref);
    if (probed[i])
      views.push({
        view: 'native probe (strata_probe)',
        id: `vulkan ${probed[i].index}`,
        name: probed[i].name,
        totalMiB: mib(probed[i].totalBytes),
        freeMiB: mib(probed[i].freeBytes),
      });
    if (fromProbe[i])
      views.push({
        view: 'planner, from the probe',
        id: fromProbe[i].id,
        name: fromProbe[i].name,
        totalMiB: mib(fromProbe[i].totalBytes),
        freeMiB: mib(fromProbe[i].budgetBytes),
      });
    if (fromList[i])
      views.push({
        view: 'planner, with --list-devices',
        id: fromList[i].id,
        name: fromList[i].name,
        totalMiB: mib(fromList[i].totalBytes),
        freeMiB: mib(fromList[i].budgetBytes),
      });
    for (const v of views) {
      let agree = 'reference';
      if (v !== ref) {
        const why: string[] = [];
        if (!ref) why.push('not listed');
        else {
          if (v.name !== ref.name) why.push('name');
          if (v.totalMiB !== ref.totalMiB) why.push(`total ${(v.totalMiB ?? 0) - (ref.totalMiB ?? 0)} MiB`);
          const df = (v.freeMiB ?? 0) - (ref.freeMiB ?? 0);
          if (Math.abs(df) > 0.01 * (ref.freeMiB ?? 0)) why.push(`free ${df} MiB`);
          else if (df) agree = `yes (free ${df > 0 ? '+' : ''}${df} MiB)`;
          if (/^planner/.test(v.view) && v.id !== ref.id) why.push(`id ${v.id}`);
        }
        if (why.length) {
          agree = `NO: ${why.join(', ')}`;
          bad = true;
        } else if (agree === 'reference') agree = 'yes';
      }
      console.log(`| ${ref?.id ?? `#${i}`} | ${v.view} | ${v.name} | ${v.totalMiB ?? '?'} | ${v.freeMiB ?? '?'} | ${agree} |`);
    }
  }
  // Context, not part of the agreement: the same GPU through CUDA, and nvidia-smi.
  if (has('probe-all.json')) {
    const all = JSON.parse(read('probe-all.json')) as Omit<AcceleratorProbe, 'via'>;
    for (const d of all.devices.filter((x) => x.backend === 'cuda'))
      console.log(`\nprobe, CUDA ${d.index}: ${d.name}, total ${mib(d.totalBytes)} MiB, free ${mib(d.freeBytes)} MiB (${d.memorySource ?? '?'})`);
  }
  if (has('nvidia-smi.csv')) console.log(`\nnvidia-smi:\n${read('nvidia-smi.csv').trim()}`);
  console.log(`\nthree views ${bad ? 'DISAGREE' : 'agree'}`);
  return bad ? 1 : 0;
}

if (!process.argv[2]) {
  console.error('usage: npx tsx bench/vulkan-gpu-compare.ts <out folder of bench/vulkan-gpu.sh probe>');
  process.exit(2);
}
process.exitCode = main(path.resolve(process.argv[2]));
