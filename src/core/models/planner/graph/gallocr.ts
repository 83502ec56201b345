// ggml-alloc's graph allocator (ggml_gallocr), ported line for line where it decides sizes: the
// dynamic best-fit allocator with free-block merging, in-place reuse of a parent's memory, and
// freeing a tensor after its last consumer. Its result, the peak of each buffer, is what
// llama.cpp reports as "compute buffer size". Fragmentation makes that peak larger than any
// simple sum of live tensors, which is why the planner runs this instead of a formula.

import { Graph, Tensor, canInplace, isView, nbytes, sameLayout } from './tensor';

interface Block {
  offset: number;
  size: number;
}

/** ggml_dyn_tallocr with one chunk (compute buffers never reach a backend's max buffer size here). */
class DynAllocator {
  private blocks: Block[] = [{ offset: 0, size: Number.MAX_SAFE_INTEGER / 2 }];
  maxSize = 0;

  constructor(readonly alignment: number) {}

  private align(n: number): number {
    return Math.ceil(n / this.alignment) * this.alignment;
  }

  alloc(bytes: number): number {
    const size = this.align(bytes);
    // Best fit among all blocks but the last; the last block (the growing end) only if none fits.
    let best = -1;
    let bestSize = Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < this.blocks.length - 1; i++) {
      const b = this.blocks[i];
      if (b.size >= size && b.size <= bestSize) {
        best = i;
        bestSize = b.size;
      }
    }
    if (best === -1) best = this.blocks.length - 1;
    const block = this.blocks[best];
    const offset = block.offset;
    block.offset += size;
    block.size -= size;
    if (block.size === 0) this.blocks.splice(best, 1);
    this.maxSize = Math.max(this.maxSize, offset + size);
    return offset;
  }

  free(offset: number, bytes: number): void {
    const size = this.align(bytes);
    for (let i = 0; i < this.blocks.length; i++) {
      const b = this.blocks[i];
      if (b.offset + b.size === offset) {
        b.size += size;
        const next = this.blocks[i + 1];
        if (next && b.offset + b.size === next.offset) {
          b.size += next.size;
          this.blocks.splice(i + 1, 1);
        }
        return;
      }
      if (offset + size === b.offset) {
        b.offset = offset;
        b.size += size;
        const prev = this.blocks[i - 1];
        if (prev && prev.offset + prev.size === b.offset) {
          prev.size += b.size;
          this.blocks.splice(i, 1);
        }
        return;
      }
    }
    let at = 0;
    while (at < this.blocks.length && this.blocks[at].offset < offset) at++;
    this.blocks.splice(at, 0, { offset, size });
  }
}

interface HashNode {
  nChildren: number;
  nViews: number;
  buffer: number;
  offset: number;
  allocated: boolean;
}

export interface BufferSpec {
  /** Bytes; CPU 32 (TENSOR_ALIGNMENT), CUDA/HIP 128, Vulkan the device's minStorageBufferOffsetAlignment. */
  alignment: number;
  /** The backend is ggml-vulkan, whose graph_optimize reorders each split before allocation (vulkanOrder.ts). */
  vulkanOrder?: boolean;
}

/**
 * Peak bytes of each buffer for one graph. `bufferOf` maps a tensor to its buffer index (its
 * backend); buffers of the same index share one allocator, as in ggml_gallocr_new_n.
 */
export function allocateGraph(graph: Graph, buffers: readonly BufferSpec[], bufferOf: (t: Tensor) => number): number[] {
  const allocs = buffers.map((b) => new DynAllocator(b.alignment));
  const hash = new Map<number, HashNode>();
  const hn = (t: Tensor): HashNode => {
    let h = hash.get(t.id);
    if (!h) hash.set(t.id, (h = { nChildren: 0, nViews: 0, buffer: -1, offset: 0, allocated: false }));
    return h;
  };
  const isOwn = (t: Tensor) => hn(t).allocated;
  const isAllocated = (t: Tensor) => t.external || isOwn(t);

  const allocateNode = (node: Tensor, buffer: number): void => {
    const h = hn(node);
    if (isAllocated(node) || isView(node)) return;
    h.allocated = true;
    if (canInplace(node.op)) {
      for (const parent of node.src) {
        if (!isOwn(parent)) continue;
        if (parent.output || (parent.viewSrc && parent.viewSrc.output)) continue;
        if (!sameLayout(node, parent)) continue;
        const ph = hn(parent);
        if (ph.nChildren !== 1 || ph.nViews !== 0) continue;
        if (isView(parent)) {
          const vs = parent.viewSrc!;
          const vh = hn(vs);
          // ggml also requires the view to start where its source does (equal data pointers).
          if (vh.nViews === 1 && vh.nChildren === 0 && parent.viewOffset === 0) {
            h.buffer = ph.buffer;
            h.offset = vh.offset;
            ph.allocated = false;
            vh.allocated = false;
            freeExtra(node, vs, vh);
            return;
          }
        } else {
          h.buffer = ph.buffer;
          h.offset = ph.offset;
          ph.allocated = false;
          freeExtra(node, parent, ph);
          return;
        }
      }
    }
    h.buffer = buffer;
    h.offset = allocs[buffer].alloc(nbytes(node));
  };

  const freeExtra = (node: Tensor, parent: Tensor, ph: HashNode): void => {
    const a = allocs[ph.buffer];
    const align = (n: number) => Math.ceil(n / a.alignment) * a.alignment;
    const ps = align(nbytes(parent));
    const ns = align(nbytes(node));
    if (ps > ns) a.free(ph.offset + ns, ps - ns);
  };

  const freeNode = (node: Tensor): void => {
    if (node.output) return;
    const h = hn(node);
    allocs[h.buffer].free(h.offset, nbytes(node));
    h.allocated = false;
  };

  for (const leaf of graph.leafs) allocateNode(leaf, bufferOf(leaf));

  for (const node of graph.nodes) {
    if (isView(node) && node.op !== 'NONE') hn(node.viewSrc!).nViews += 1;
    if (node.input) allocateNode(node, bufferOf(node));
    for (const src of node.src) {
      hn(src).nChildren += 1;
      if (src.input) allocateNode(src, bufferOf(node));
    }
  }

  for (const node of graph.nodes) {
    const buffer = bufferOf(node);
    for (const parent of node.src) allocateNode(parent, buffer);
    allocateNode(node, buffer);
    for (const parent of node.src) {
      const ph = hn(parent);
      ph.nChildren -= 1;
      if (ph.nChildren === 0 && ph.nViews === 0) {
        if (isView(parent)) {
          const vs = parent.viewSrc!;
          const vh = hn(vs);
          vh.nViews -= 1;
          if (vh.nViews === 0 && vh.nChildren === 0 && vh.allocated) freeNode(vs);
        } else if (ph.allocated) {
          freeNode(parent);
        }
      }
    }
  }
  return allocs.map((a) => a.maxSize);
}
