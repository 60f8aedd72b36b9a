// Graph-level ops the passes introduce, each executable two ways: through `bind` (any backend,
// traceable, differentiable: the op decomposes into the primitives it fused) and by the compiled
// executor (one generated kernel).
//   fusedElementwise: a tree of elementwise primitives over viewed inputs, optionally ending in a
//     reduction (softmax's max/sum, layernorm's mean) — one loop nest.
//   matmulEpilogue: matmul whose result feeds an elementwise epilogue (bias add, relu, gelu, ...)
//     applied before the result is stored.
import type { DType } from '../core/dtype.js';
import { itemsize } from '../core/dtype.js';
import { sizeOf, viewStrides } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { bind } from '../ops/dispatch.js';
import { full } from '../ops/creation.js';
import { primitives, type Layout, type PrimitiveName, type ReduceOp, type ValueInfo } from '../ops/primitives.js';
import { registerGraphOp } from '../graph/graph-ops.js';
import type { GraphNode } from '../graph/graph.js';
import type { ScalarExpr } from './codegen/kernel-ir.js';

export interface ViewStep {
  op: PrimitiveName;
  attrs: unknown;
}

export interface FusedSpec {
  /** Per node input: the views applied to it before it is read over the iteration space. */
  inputs: { views: ViewStep[] }[];
  body: ScalarExpr[];
  /** The iteration space (the output shape, or the reduction's input shape). */
  shape: number[];
  outDtype: DType;
  reduce?: { op: ReduceOp; axes: number[]; keepdim: boolean };
}

export interface MatmulEpilogueAttrs {
  /** Input 0 of the epilogue is the matmul's result; inputs 1.. are the node's inputs 2.. */
  epilogue: FusedSpec;
}

/** The layout of applying view primitives to `base`, or undefined if a reshape would need a copy. */
export function composeViews(base: Layout, views: readonly ViewStep[]): Layout | undefined {
  let l = base;
  for (const v of views) {
    if (v.op === 'reshape') {
      const shape = (v.attrs as { shape: number[] }).shape;
      const strides = viewStrides(l.shape, l.strides, shape);
      if (strides === undefined) return undefined;
      l = { shape: [...shape], strides, offset: l.offset };
    } else {
      const f = primitives[v.op].view as ((l: Layout, a: unknown) => Layout) | undefined;
      if (f === undefined) return undefined;
      l = f(l, v.attrs);
    }
  }
  return l;
}

/** The output shape and dtype of a fused spec (the reduction's, when it has one). */
export function fusedOutputInfo(spec: FusedSpec): ValueInfo {
  if (spec.reduce === undefined) return { shape: [...spec.shape], dtype: spec.outDtype };
  const { axes, keepdim } = spec.reduce;
  const shape = spec.shape.flatMap((d, i) => (axes.includes(i) ? (keepdim ? [1] : []) : [d]));
  return { shape, dtype: spec.outDtype };
}

/**
 * Evaluates a fused spec with primitives (the reference semantics of the fused kernel). With
 * `freeIntermediates` each value the body creates is disposed after its last use in the body, as
 * the interpreter frees unfused nodes' values (only where no tape may hold them: a replay without
 * gradients).
 */
export function evaluateFused(spec: FusedSpec, inputs: readonly Tensor[], opts: { freeIntermediates?: boolean } = {}): Tensor {
  const viewed = inputs.map((x, i) => spec.inputs[i]!.views.reduce((t, v) => bind(v.op, [t], v.attrs as never), x));
  const free = opts.freeIntermediates === true;
  const lastUse = new Map<number, number>();
  if (free) spec.body.forEach((e, i) => { if (e.kind === 'op') for (const a of e.args) lastUse.set(a, i); });
  const last = spec.body.length - 1;
  const disposable = (k: number): boolean => {
    const e = spec.body[k]!;
    return k !== last && (e.kind !== 'load' || viewed[e.input] !== inputs[e.input]);
  };
  const vals: Tensor[] = [];
  const like = viewed[0];
  spec.body.forEach((e, i) => {
    if (e.kind === 'load') vals.push(viewed[e.input]!);
    // A literal is one element broadcast over the iteration space (a stride-0 view, as the
    // eager code's scalar operand was), not a materialized tensor of the whole shape.
    else if (e.kind === 'literal') vals.push(bind('expand', [full([], e.value, { dtype: e.dtype, backend: like?.backend })], { shape: [...spec.shape] }));
    else {
      const args = e.args.map((a) => vals[a]!);
      vals.push(bind(e.op as PrimitiveName, args, (e.op === 'cast' ? { dtype: e.dtype } : {}) as never));
      if (free) for (const a of new Set(e.args)) if (lastUse.get(a) === i && disposable(a)) vals[a]!.dispose();
    }
  });
  let out = vals[last]!;
  if (spec.reduce !== undefined) {
    const pre = out;
    out = bind(spec.reduce.op, [pre], { axes: spec.reduce.axes, keepdim: spec.reduce.keepdim });
    const e = spec.body[last]!;
    if (free && (e.kind !== 'load' || viewed[e.input] !== inputs[e.input])) pre.dispose();
  }
  return out;
}

/**
 * A fused node (fusedElementwise or matmulEpilogue) through `bind`, op by op, each intermediate
 * freed after its last use: for compiled replays, which record no tape, so nothing else holds them.
 */
export function evaluateFusedNodeFreeing(node: GraphNode, inputs: readonly Tensor[]): Tensor {
  if (node.op === 'fusedElementwise') return evaluateFused((node.attrs as { spec: FusedSpec }).spec, inputs, { freeIntermediates: true });
  const y = bind('matmul', [inputs[0]!, inputs[1]!], {});
  const out = evaluateFused((node.attrs as MatmulEpilogueAttrs).epilogue, [y, ...inputs.slice(2)], { freeIntermediates: true });
  if (out !== y) y.dispose();
  return out;
}

/** FLOPs of a fused body: each op's per-element cost from the primitive table, times the points. */
export function bodyFlops(spec: FusedSpec): number {
  let perPoint = spec.reduce !== undefined ? 1 : 0;
  for (const e of spec.body) {
    if (e.kind !== 'op') continue;
    const one: ValueInfo = { shape: [1], dtype: e.dtype };
    const p = primitives[e.op as PrimitiveName] as unknown as { cost(i: ValueInfo[], a: unknown, o: ValueInfo): { flops: number } };
    perPoint += p.cost(e.args.map(() => one), e.op === 'cast' ? { dtype: e.dtype } : {}, one).flops;
  }
  return perPoint * sizeOf(spec.shape);
}

const bytes = (v: ValueInfo): number => sizeOf(v.shape) * itemsize(v.dtype);

registerGraphOp('fusedElementwise', {
  infer: (_inputs, attrs) => [fusedOutputInfo((attrs as { spec: FusedSpec }).spec)],
  cost: (inputs, attrs, outs) => ({
    flops: bodyFlops((attrs as { spec: FusedSpec }).spec),
    bytesRead: inputs.reduce((s, v) => s + bytes(v), 0),
    bytesWritten: bytes(outs[0]!),
  }),
  execute: (inputs, attrs) => [evaluateFused((attrs as { spec: FusedSpec }).spec, inputs)],
  elementwise: true,
});

registerGraphOp('matmulEpilogue', {
  infer: (inputs, attrs) => {
    const mm = primitives.matmul.infer([inputs[0]!, inputs[1]!], {});
    void mm;
    return [fusedOutputInfo((attrs as MatmulEpilogueAttrs).epilogue)];
  },
  cost: (inputs, attrs, outs) => {
    const mm = primitives.matmul.cost([inputs[0]!, inputs[1]!], {}, primitives.matmul.infer([inputs[0]!, inputs[1]!], {}));
    return {
      flops: mm.flops + bodyFlops((attrs as MatmulEpilogueAttrs).epilogue),
      bytesRead: inputs.reduce((s, v) => s + bytes(v), 0),
      bytesWritten: bytes(outs[0]!),
    };
  },
  execute: (inputs, attrs) => {
    const y = bind('matmul', [inputs[0]!, inputs[1]!], {});
    return [evaluateFused((attrs as MatmulEpilogueAttrs).epilogue, [y, ...inputs.slice(2)])];
  },
});
