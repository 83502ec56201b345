// ggml_backend_sched's part in compute-buffer sizes: each node runs on the backend that holds its
// layer; where a node reads a tensor made on another backend (or a host-side graph input), the
// scheduler copies it into the node's backend at the start of the split, and the copy lives in
// that backend's compute buffer. A Vulkan backend first reorders its splits (vulkanOrder.ts).
// Then one ggml-alloc pass sizes every buffer. Mirrors
// ggml_backend_sched_split_graph for n_copies == 1 (no pipeline parallelism, which llama.cpp
// enables only for several GPUs of one host), without op offload of CPU-resident weights.

import { BufferSpec, allocateGraph } from './gallocr';
import { Graph, Tensor } from './tensor';
import { BuiltGraph, OUTPUT_LAYER } from './transformer';
import { vulkanOrder } from './vulkanOrder';

const GGML_MAX_SRC = 10;

export interface ScheduleSpec {
  /** One per backend; the CPU (host) backend is the last, as in llama_context. */
  buffers: BufferSpec[];
  /** Backend index of each repeating layer. */
  layerBackend: (layer: number) => number;
  /** Backend of the output norm and head. */
  outputBackend: number;
  /** Weights llama.cpp left on the CPU inside offloaded layers (too large for the device): their ops run there. */
  hostWeights?: ReadonlySet<string>;
}

/** Peak compute-buffer bytes per backend for one graph. */
export function scheduleBuffers(built: BuiltGraph, spec: ScheduleSpec): number[] {
  const cpu = spec.buffers.length - 1;
  const backendOf = (t: Tensor): number => {
    if (t.input) return cpu;
    // ggml_backend_sched runs an op where its weight is when the device cannot take it.
    if (spec.hostWeights && t.src.some((w) => w.external && spec.hostWeights!.has(w.name))) return cpu;
    if (t.layer === -1) return cpu;
    if (t.layer === OUTPUT_LAYER) return spec.outputBackend;
    return spec.layerBackend(t.layer);
  };
  const { graph } = built;
  const assigned = new Map<number, number>();
  for (const n of graph.nodes) assigned.set(n.id, backendOf(n));
  for (const l of graph.leafs) assigned.set(l.id, backendOf(l));

  const allOnCpu = graph.nodes.every((n) => assigned.get(n.id) === cpu);
  if (allOnCpu) return allocateGraph(graph, spec.buffers, () => cpu);

  const copyGraph = new Graph();
  let nextId = -1;
  const copies = new Map<string, Tensor>();
  let splitBackend = -2;
  let splitStart = 0;
  const nodes = graph.nodes;

  const uses = new Map<Tensor, number>();
  for (const node of nodes) for (const s of node.src) uses.set(s, (uses.get(s) ?? 0) + 1);

  const flushSplit = (end: number) => {
    if (splitBackend < 0) return;
    const inputs: Tensor[] = [];
    const rewritten: Tensor[] = [];
    // The backend's graph_optimize runs on each split before ggml-alloc sees it.
    const reordered = spec.buffers[splitBackend].vulkanOrder ? vulkanOrder(nodes.slice(splitStart, end), (t) => uses.get(t) ?? 0) : undefined;
    const splitNodes = reordered?.nodes ?? nodes.slice(splitStart, end);
    for (const node of splitNodes) {
      let changed = false;
      const src = node.src.map((s) => {
        const sb = s.external ? splitBackend : (assigned.get(s.id) ?? cpu);
        if (sb === splitBackend) return s;
        const key = `${s.id}@${splitBackend}`;
        let c = copies.get(key);
        if (!c) {
          c = {
            ...s,
            id: nextId--,
            name: `${s.name}#copy`,
            op: 'NONE',
            src: [],
            viewSrc: undefined,
            viewOffset: 0,
            input: false,
            output: false,
            external: false,
          };
          copies.set(key, c);
          assigned.set(c.id, splitBackend);
          inputs.push(s);
        }
        changed = true;
        return c;
      });
      rewritten.push(changed ? { ...node, src } : node);
      // ggml_backend_sched's dependency node: a view whose sources stay allocated until here.
      const keep = reordered?.keepUntil.get(node) ?? [];
      for (let k = 0; k < keep.length; k += GGML_MAX_SRC) {
        const dep: Tensor = {
          ...keep[k],
          id: nextId--,
          name: `${keep[k].name}#keep`,
          op: 'NONE',
          src: keep.slice(k, k + GGML_MAX_SRC),
          viewSrc: keep[k].viewSrc ?? keep[k],
          input: false,
          output: false,
          external: false,
        };
        assigned.set(dep.id, splitBackend);
        rewritten.push(dep);
      }
    }
    for (const inp of inputs) {
      // The dependency node keeps the source alive until the copy is made. Its op is NONE, as
      // ggml_view_tensor leaves it, so ggml-alloc does not count it as a view of the source.
      const dep: Tensor = {
        ...inp,
        id: nextId--,
        name: `${inp.name}#dep`,
        op: 'NONE',
        src: [inp],
        viewSrc: inp.viewSrc ?? inp,
        viewOffset: 0,
        input: false,
        output: false,
        external: false,
      };
      assigned.set(dep.id, assigned.get(inp.id) ?? cpu);
      copyGraph.nodes.push(dep, copies.get(`${inp.id}@${splitBackend}`)!);
    }
    copyGraph.nodes.push(...rewritten);
  };

  for (let i = 0; i < nodes.length; i++) {
    const b = assigned.get(nodes[i].id)!;
    if (b !== splitBackend) {
      flushSplit(i);
      splitBackend = b;
      splitStart = i;
    }
  }
  flushSplit(nodes.length);
  copyGraph.leafs.push(...graph.leafs);
  return allocateGraph(copyGraph, spec.buffers, (t) => assigned.get(t.id) ?? cpu);
}
