// ggml-vulkan's graph_optimize (ggml_vk_graph_optimize at the pinned commit): before allocating,
// ggml_backend_sched lets each backend reorder the nodes of its splits, and Vulkan does. It groups
// nodes that do not depend on each other (up to 20 ahead) so they run between one barrier, and
// pulls fusable chains together (RMS_NORM+MUL+ROPE, ROPE+VIEW+SET_ROWS, MUL_MAT+ADD+ADD). The
// allocator then frees tensors at different points: on an H200 that is one [n_embd, n_ubatch]
// activation less at the peak than CUDA, which keeps llama.cpp's order. Ported for the ops the
// planner's graphs contain; patterns over ops they never build (snake, sigmoid/softplus MoE gates,
// QSA top-k, SSM, ADD_ID, UNARY+MUL) are left out because they cannot match.

import { Op, Tensor } from './tensor';

const TOPK_MOE_EARLY_SOFTMAX_NORM: Op[] = ['SOFT_MAX', 'RESHAPE', 'ARGSORT', 'VIEW', 'GET_ROWS', 'RESHAPE', 'SUM_ROWS', 'CLAMP', 'DIV', 'RESHAPE'];
const TOPK_MOE_EARLY_SOFTMAX: Op[] = ['SOFT_MAX', 'RESHAPE', 'ARGSORT', 'VIEW', 'GET_ROWS'];
const TOPK_MOE_LATE_SOFTMAX: Op[] = ['ARGSORT', 'VIEW', 'GET_ROWS', 'RESHAPE', 'SOFT_MAX', 'RESHAPE'];
const TOPK_MOE: Op[][] = [TOPK_MOE_EARLY_SOFTMAX_NORM, TOPK_MOE_EARLY_SOFTMAX, TOPK_MOE_LATE_SOFTMAX];
const FUSED: Op[][] = [
  ['RMS_NORM', 'MUL', 'ADD', 'MUL'],
  ['RMS_NORM', 'MUL', 'ADD'],
  ['RMS_NORM', 'MUL', 'ROPE', 'VIEW', 'SET_ROWS'],
  ['RMS_NORM', 'VIEW', 'SET_ROWS'],
  ['ROPE', 'VIEW', 'SET_ROWS'],
];
const NUM_TO_CHECK = 20;

const isEmpty = (t: Tensor) => t.op === 'NONE' || t.op === 'RESHAPE' || t.op === 'TRANSPOSE' || t.op === 'VIEW' || t.op === 'PERMUTE';
const base = (t: Tensor) => t.viewSrc ?? t;

/** Whether dst must run after src (a source, a shared view base, or a write-after-read). */
function isSrcOf(dst: Tensor, src: Tensor): boolean {
  for (let s = 0; s < Math.max(dst.src.length, src.src.length); s++) {
    const d = dst.src[s];
    if (d === src) return true;
    if (isEmpty(dst) || isEmpty(src)) continue;
    if (d && base(d) === base(src)) return true;
    const ss = src.src[s];
    if (ss && base(dst) === base(ss)) return true;
  }
  return base(dst) === base(src);
}

export interface VulkanOrder {
  nodes: Tensor[];
  /** Tensors ggml-alloc must keep alive until the keyed node has run (fused top-k MoE). */
  keepUntil: Map<Tensor, Tensor[]>;
}

/**
 * The split's nodes in the order ggml-vulkan runs (and ggml-alloc allocates) them. `useCount`
 * is the number of times a tensor is a source in the whole graph (ggml's use_counts).
 */
export function vulkanOrder(nodes: readonly Tensor[], useCount: (t: Tensor) => number): VulkanOrder {
  const n = nodes.length;
  const used = new Array<boolean>(n).fill(false);
  const usedSet = new Set<Tensor>();
  const order: Tensor[] = [];
  const keepUntil = new Map<Tensor, Tensor[]>();
  let firstUnused = 0;

  const matches = (pattern: Op[], start: number) => start + pattern.length <= n && pattern.every((op, j) => nodes[start + j].op === op && !used[start + j]);
  const emptyOrScheduledBetween = (lo: number, hi: number) => {
    for (let v = lo; v < hi; v++) if (!used[v] && !isEmpty(nodes[v])) return false;
    return true;
  };
  const advance = () => {
    while (firstUnused < n && used[firstUnused]) firstUnused++;
  };
  const keep = (pattern: Op[]) => {
    for (let j = 0; j < pattern.length; j++) {
      order.push(nodes[firstUnused + j]);
      usedSet.add(nodes[firstUnused + j]);
      used[firstUnused + j] = true;
    }
    advance();
  };
  // ggml_can_fuse_subgraph_ext: every node but the outputs is used only inside the subgraph.
  const fusable = (idxs: number[], outputs: number[]) =>
    idxs.every((idx, i) => {
      const node = nodes[idx];
      if (outputs.includes(idx)) return true;
      if (node.output) return false;
      let uses = 0;
      for (const other of idxs.slice(i + 1)) uses += nodes[other].src.filter((s) => s === node).length;
      if (uses !== useCount(node)) return false;
      // (ggml also lets a view of a weight through; no chain pulled here has one.)
      return !node.viewSrc || idxs.some((k) => nodes[k] === node.viewSrc);
    });

  while (firstUnused < n) {
    const moe = TOPK_MOE.find((p) => matches(p, firstUnused));
    if (moe) {
      let last = firstUnused + moe.length - 1;
      if (last + 1 < n && nodes[last + 1].op === 'SCALE') last++;
      // The fused kernel reads every external input at its end: keep them alive until then.
      const kept = keepUntil.get(nodes[last]) ?? [];
      keepUntil.set(nodes[last], kept);
      const seen = new Set<Tensor>();
      for (let j = 0; j < moe.length; j++) {
        const node = nodes[firstUnused + j];
        for (const s of node.src) {
          if (!seen.has(s) && !kept.includes(s)) kept.push(s);
          seen.add(s);
        }
        seen.add(node);
      }
      keep(moe);
      continue;
    }
    const fused = FUSED.find((p) => matches(p, firstUnused));
    if (fused) {
      keep(fused);
      continue;
    }

    const current = [firstUnused];
    const end = Math.min(firstUnused + NUM_TO_CHECK, n);
    // First pass: real nodes that depend on nothing still waiting (fusable pairs excepted).
    for (let j = firstUnused + 1; j < end; j++) {
      if (used[j] || isEmpty(nodes[j])) continue;
      if (TOPK_MOE.some((p) => matches(p, j)) || FUSED.some((p) => matches(p, j))) continue;
      let ok = true;
      for (let c = firstUnused; c < j; c++) {
        if (used[c] || !isSrcOf(nodes[j], nodes[c])) continue;
        const back = c === current[current.length - 1];
        const [oc, oj] = [nodes[c].op, nodes[j].op];
        if (back && oc === 'RMS_NORM' && oj === 'MUL' && emptyOrScheduledBetween(c + 1, j)) continue;
        if (back && j === c + 1 && ((oc === 'MUL_MAT' && oj === 'ADD') || (oc === 'MUL_MAT_ID' && oj === 'MUL') || (oc === 'ADD' && oj === 'ADD'))) continue;
        ok = false;
        break;
      }
      if (!ok) continue;
      current.push(j);
      let ropeIdx = j;
      // RMS_NORM + MUL: pull the ROPE that uses it.
      if (nodes[j].op === 'MUL' && nodes[j - 1].op === 'RMS_NORM') {
        for (let k = j + 1; k < Math.min(j + 15, n); k++) {
          const r = nodes[k];
          if (r.op === 'ROPE' && r.src[0] === nodes[j] && r.src[1].op === 'NONE' && (!r.src[2] || r.src[2].op === 'NONE')) {
            ropeIdx = k;
            current.push(k);
            used[k] = true;
            break;
          }
        }
      }
      // ROPE/RMS_NORM + VIEW + SET_ROWS made consecutive.
      if (nodes[ropeIdx].op === 'ROPE' || nodes[ropeIdx].op === 'RMS_NORM') {
        let viewIdx = -1;
        let setRowsIdx = -1;
        for (let k = ropeIdx + 1; k < Math.min(ropeIdx + 15, n); k++) {
          if (used[k]) continue;
          if (viewIdx === -1 && nodes[k].op === 'VIEW' && nodes[k].src[0] === nodes[ropeIdx]) {
            viewIdx = k;
            continue;
          }
          if (viewIdx !== -1 && nodes[k].op === 'SET_ROWS' && nodes[k].src[0] === nodes[viewIdx]) {
            setRowsIdx = k;
            break;
          }
        }
        if (setRowsIdx !== -1) {
          let pull = fusable([ropeIdx, viewIdx, setRowsIdx], [setRowsIdx]);
          for (let c = ropeIdx + 1; pull && c < setRowsIdx; c++) {
            if (!used[c] && c !== viewIdx && !isEmpty(nodes[c]) && isSrcOf(nodes[setRowsIdx], nodes[c])) pull = false;
          }
          if (pull) {
            current.push(viewIdx, setRowsIdx);
            used[viewIdx] = used[setRowsIdx] = true;
          }
        }
      }
      // MUL_MAT + ADD (bias) + ADD: pull the second ADD when its other operand is ready.
      if (nodes[j].op === 'ADD' && nodes[j - 1].op === 'MUL_MAT') {
        for (let k = j + 1; k < Math.min(j + 15, n); k++) {
          const a = nodes[k];
          if (a.op === 'ADD' && a.src[0] === nodes[j] && (a.src[1].op === 'NONE' || usedSet.has(a.src[1]))) {
            current.push(k);
            used[k] = true;
            break;
          }
        }
      }
    }
    // Second pass: views whose sources are done or in this set (not after an ADD, to keep ADD+RMS_NORM fusable).
    if (nodes[current[current.length - 1]].op !== 'ADD') {
      for (let j = firstUnused + 1; j < end; j++) {
        if (used[j] || !isEmpty(nodes[j])) continue;
        let ok = true;
        for (let c = firstUnused; c < j; c++) {
          if (!used[c] && isSrcOf(nodes[j], nodes[c]) && !current.includes(c)) {
            ok = false;
            break;
          }
        }
        if (ok) current.push(j);
      }
    }
    for (const c of current) {
      order.push(nodes[c]);
      usedSet.add(nodes[c]);
      used[c] = true;
    }
    advance();
  }
  return { nodes: order, keepUntil };
}
