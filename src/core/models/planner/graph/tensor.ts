// A miniature of ggml's tensor graph, just enough to predict compute-buffer sizes: shapes, byte
// sizes, which op made a tensor (ggml-alloc reuses a parent's memory only for some ops), views,
// input/output flags, and the order in which ggml_build_forward_expand visits tensors. Nothing is
// computed. Mirrors ggml/src/ggml.c at the pinned llama.cpp commit (de3ff81).

export type ElemType = 'f32' | 'f16' | 'i32' | 'i64';
const ELEM_BYTES: Record<ElemType, number> = { f32: 4, f16: 2, i32: 4, i64: 8 };

/** Ops that matter to the allocator; everything else is 'OTHER' (allocated, never in place). */
export type Op =
  | 'NONE'
  | 'GET_ROWS'
  | 'RMS_NORM'
  | 'MUL'
  | 'ADD'
  | 'DIV'
  | 'SCALE'
  | 'UNARY'
  | 'CLAMP'
  | 'SOFT_MAX'
  | 'ROPE'
  | 'MUL_MAT'
  | 'MUL_MAT_ID'
  | 'SET_ROWS'
  | 'FLASH_ATTN_EXT'
  | 'CONT'
  | 'GLU'
  | 'ARGSORT'
  | 'TOP_K'
  | 'SUM_ROWS'
  | 'CPY'
  | 'VIEW'
  | 'RESHAPE'
  | 'PERMUTE'
  | 'TRANSPOSE'
  | 'OTHER';

const VIEW_OPS: ReadonlySet<Op> = new Set<Op>(['VIEW', 'RESHAPE', 'PERMUTE', 'TRANSPOSE']);

// ggml_op_can_inplace (ggml-alloc.c), restricted to the ops modelled here.
const INPLACE_OPS: ReadonlySet<Op> = new Set<Op>(['SCALE', 'ADD', 'MUL', 'DIV', 'UNARY', 'ROPE', 'RMS_NORM', 'CLAMP', 'SOFT_MAX']);

export function canInplace(op: Op): boolean {
  return INPLACE_OPS.has(op);
}

export interface Tensor {
  readonly id: number;
  name: string;
  readonly op: Op;
  readonly type: ElemType;
  /** ggml ne, always 4 long. */
  readonly ne: readonly number[];
  /** Byte strides, always 4 long. */
  readonly nb: readonly number[];
  readonly src: readonly Tensor[];
  /** For views: the tensor whose memory this is (never itself a view). */
  readonly viewSrc?: Tensor;
  /** Byte offset of a view into viewSrc. */
  readonly viewOffset: number;
  input: boolean;
  output: boolean;
  /** Memory not owned by the graph allocator: weights, the KV cache. */
  readonly external: boolean;
  /** Index into the backends of the schedule; undefined until assigned. */
  backend?: number;
  /** Layer the tensor belongs to (-1: input/output part). */
  layer: number;
}

export function isView(t: Tensor): boolean {
  return t.viewSrc !== undefined;
}

/** ggml_nbytes of a contiguous (or any non-view) tensor. */
export function nbytes(t: Tensor): number {
  // Views never allocate, so contiguous size is all that is ever asked for.
  return t.ne.reduce((a, b) => a * b, 1) * ELEM_BYTES[t.type];
}

export function sameLayout(a: Tensor, b: Tensor): boolean {
  return a.type === b.type && a.ne.every((v, i) => v === b.ne[i]) && a.nb.every((v, i) => v === b.nb[i]);
}

function contiguousStrides(type: ElemType, ne: readonly number[]): number[] {
  const nb = [ELEM_BYTES[type]];
  for (let i = 1; i < 4; i++) nb.push(nb[i - 1] * ne[i - 1]);
  return nb;
}

function pad4(ne: readonly number[]): number[] {
  const out = [...ne];
  while (out.length < 4) out.push(1);
  return out;
}

/** Builds tensors the way ggml's constructors do (shape rules, views, flags). */
export class GraphBuilder {
  private nextId = 0;
  /** Layer stamped on tensors created from now on. */
  layer = -1;

  private make(
    op: Op,
    type: ElemType,
    ne: readonly number[],
    src: readonly Tensor[],
    name: string,
    view?: { of: Tensor; nb: readonly number[]; offset?: number },
    external = false,
  ): Tensor {
    const ne4 = pad4(ne);
    const viewSrc = view ? (view.of.viewSrc ?? view.of) : undefined;
    const viewOffset = view ? (view.offset ?? 0) + (view.of.viewSrc ? view.of.viewOffset : 0) : 0;
    return {
      id: this.nextId++,
      name,
      op,
      type,
      ne: ne4,
      nb: view ? pad4(view.nb) : contiguousStrides(type, ne4),
      src,
      viewSrc,
      viewOffset,
      input: false,
      output: false,
      external,
      layer: this.layer,
    };
  }

  /** A weight, or other memory owned outside the graph (KV cache). */
  external(name: string, type: ElemType, ne: readonly number[]): Tensor {
    return this.make('NONE', type, ne, [], name, undefined, true);
  }

  input(name: string, type: ElemType, ne: readonly number[]): Tensor {
    const t = this.make('NONE', type, ne, [], name);
    t.input = true;
    return t;
  }

  op(op: Op, type: ElemType, ne: readonly number[], src: readonly Tensor[], name = ''): Tensor {
    return this.make(op, type, ne, src, name);
  }

  /** A result with a's shape and type (ggml_dup_tensor(a)): add, mul, norm, rope, softmax, scale. */
  like(op: Op, a: Tensor, src: readonly Tensor[], name = ''): Tensor {
    return this.make(op, a.type, a.ne, src, name);
  }

  /** ggml_mul_mat(w, x): [w.ne1, x.ne1, x.ne2, x.ne3], always f32. */
  mulMat(w: Tensor, x: Tensor, name = ''): Tensor {
    return this.make('MUL_MAT', 'f32', [w.ne[1], x.ne[1], x.ne[2], x.ne[3]], [w, x], name);
  }

  reshape(a: Tensor, ne: readonly number[], name = ''): Tensor {
    return this.make('RESHAPE', a.type, ne, [a], name || `${a.name} (reshaped)`, { of: a, nb: contiguousStrides(a.type, pad4(ne)) });
  }

  view(a: Tensor, ne: readonly number[], nb: readonly number[], offset = 0, name = ''): Tensor {
    return this.make('VIEW', a.type, ne, [a], name || `${a.name} (view)`, { of: a, nb, offset });
  }

  permute(a: Tensor, axes: readonly [number, number, number, number], name = ''): Tensor {
    const ne = [0, 0, 0, 0];
    const nb = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) {
      ne[axes[i]] = a.ne[i];
      nb[axes[i]] = a.nb[i];
    }
    return this.make('PERMUTE', a.type, ne, [a], name || `${a.name} (permuted)`, { of: a, nb });
  }

  transpose(a: Tensor): Tensor {
    return this.make('TRANSPOSE', a.type, [a.ne[1], a.ne[0], a.ne[2], a.ne[3]], [a], `${a.name} (transposed)`, {
      of: a,
      nb: [a.nb[1], a.nb[0], a.nb[2], a.nb[3]],
    });
  }

  /** ggml_set_rows returns a view of the destination (the KV cache); its sources are src, idx, dst in that order. */
  setRows(dst: Tensor, src: Tensor, idx: Tensor, name = ''): Tensor {
    return this.make('SET_ROWS', dst.type, dst.ne, [src, idx, dst], name || `${dst.name} (view)`, { of: dst, nb: dst.nb });
  }
}

/** ggml_cgraph as far as the allocator cares: nodes and leafs in ggml_visit_parents order. */
export class Graph {
  readonly nodes: Tensor[] = [];
  readonly leafs: Tensor[] = [];
  private readonly visited = new Set<number>();

  /** ggml_build_forward_expand. */
  expand(t: Tensor): void {
    this.visit(t);
  }

  private visit(t: Tensor): void {
    if (this.visited.has(t.id)) return;
    this.visited.add(t.id);
    for (const s of t.src) this.visit(s);
    if (t.op === 'NONE') this.leafs.push(t);
    else this.nodes.push(t);
  }
}

export function isViewOp(op: Op): boolean {
  return VIEW_OPS.has(op);
}
