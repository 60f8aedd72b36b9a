// Dynamic dimensions for jit: a dimension that varies between calls (the batch, a sequence length)
// is padded with zeros to the next power of two, so a few graphs serve every size, and outputs are
// sliced back. That is exact only when no op mixes padded rows into real ones, so after tracing a
// bucket the graph is checked (dynamicAnalysis). Exact: elementwise ops, where, cast, views that keep
// the dynamic axis (expand, permute, slice/pad/cat along other axes, reshape that keeps a dim of the
// bucket size), contiguous, reductions / argmax / cumsum over other axes, matmul whose dynamic axis
// is not the contracted one. Anything else (a reduction over the dynamic axis, e.g. a mean over the
// batch, or a reshape that merges it) makes jit fall back to the exact size for that call.
import { TesseraError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { bind } from '../ops/dispatch.js';
import type { Graph, ValueId } from './graph.js';
import { isElementwisePrimitive } from './graph-ops.js';
import { isRandomPrimitive } from '../ops/primitives.js';

/** `{ argIndex: [axes] }`: which axes of which positional arguments vary between calls. */
export type DynamicSpec = Record<number, number[]>;

export function nextPowerOfTwo(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

export interface BucketPlan {
  /** True when some dynamic dim was padded (size < bucket). */
  padded: boolean;
  size: number;
  bucket: number;
  args: unknown[];
  /** For each tensor argument (in order), its dynamic axes. */
  tensorAxes: number[][];
}

/** Pads the dynamic axes of `args` (all must share one size) to the next power of two. */
export function bucketPlan(args: readonly unknown[], spec: DynamicSpec): BucketPlan {
  let size: number | undefined;
  for (const [k, axes] of Object.entries(spec)) {
    const a = args[Number(k)];
    if (!(a instanceof Tensor)) throw new TesseraError(`jit: dynamic names argument ${k}, which is not a tensor.`);
    for (const ax of axes) {
      const d = a.shape[ax];
      if (d === undefined) throw new TesseraError(`jit: dynamic axis ${ax} of argument ${k} is out of range for its rank ${a.rank}.`);
      if (size !== undefined && d !== size) {
        throw new TesseraError(`jit: dynamic dims must share one size per call; argument ${k} axis ${ax} has ${d} but another has ${size}.`);
      }
      size = d;
    }
  }
  const n = size ?? 0;
  const bucket = nextPowerOfTwo(n);
  const tensorAxes: number[][] = [];
  const padded = args.map((a, i) => {
    if (!(a instanceof Tensor)) return a;
    const axes = spec[i] ?? [];
    tensorAxes.push(axes);
    let x = a;
    for (const ax of axes) {
      if (x.shape[ax]! < bucket) {
        const pads = x.shape.map((d, j): [number, number] => (j === ax ? [0, bucket - d] : [0, 0]));
        x = bind('pad', [x], { pads, value: 0 });
      }
    }
    return x;
  });
  return { padded: bucket !== n, size: n, bucket, args: padded, tensorAxes };
}

export type DynamicAnalysis = { exact: true; outputAxes: number[][] } | { exact: false; reason: string };

/** Whether running `g` on padded inputs and slicing is exact, and which output axes to slice. */
export function dynamicAnalysis(g: Graph, inputAxes: readonly number[][], bucket: number): DynamicAnalysis {
  const dyn = new Map<ValueId, Set<number>>();
  g.inputs.forEach((id, i) => {
    const axes = inputAxes[i] ?? [];
    if (axes.length > 0) dyn.set(id, new Set(axes));
    g.value(id).shape.forEach((d, ax) => {
      if (d === bucket && !axes.includes(ax)) dyn.set(-1, new Set([ax]));
    });
  });
  if (dyn.has(-1)) return { exact: false, reason: `a static input dimension equals the bucket size ${bucket}, so dynamic dims cannot be told apart` };
  for (const [id, t] of [...g.parameters, ...g.constants]) {
    if (t.shape.includes(bucket) && id >= 0) return { exact: false, reason: `a parameter/constant has a dimension equal to the bucket size ${bucket}` };
  }
  for (const n of g.nodes) {
    // A draw over a padded shape takes more numbers than the exact call and puts them elsewhere.
    if (isRandomPrimitive(n.op) && g.value(n.outputs[0]!).shape.includes(bucket)) {
      return { exact: false, reason: `${n.op}: draws random numbers over a dimension of the bucket size ${bucket}` };
    }
    const ins = n.inputs.map((v) => dyn.get(v));
    if (ins.every((s) => s === undefined)) continue;
    const fail = (why: string): DynamicAnalysis => ({ exact: false, reason: `${n.op}: ${why}` });
    const any = (pred: (ax: number, k: number) => boolean): boolean => ins.some((s, k) => s !== undefined && [...s].some((ax) => pred(ax, k)));
    const attrs = n.attrs as Record<string, unknown>;
    switch (true) {
      case isElementwisePrimitive(n.op) || ['expand', 'permute', 'contiguous'].includes(n.op):
        break;
      case ['sum', 'prod', 'max', 'min'].includes(n.op):
        if (any((ax) => (attrs.axes as number[]).includes(ax))) return fail('reduces over the dynamic axis');
        break;
      case ['argmax', 'argmin', 'cumsum'].includes(n.op):
        if (any((ax) => attrs.axis === ax)) return fail('works along the dynamic axis');
        break;
      case n.op === 'matmul': {
        const r = g.value(n.inputs[0]!).shape.length;
        if (any((ax, k) => (k === 0 ? ax === r - 1 : ax === r - 2))) return fail('contracts over the dynamic axis');
        break;
      }
      case n.op === 'slice':
        if (any((ax) => (attrs.starts as number[])[ax] !== 0 || (attrs.sizes as number[])[ax] !== bucket || (attrs.steps as number[])[ax] !== 1)) return fail('slices the dynamic axis');
        break;
      case n.op === 'pad':
        if (any((ax) => (attrs.pads as [number, number][])[ax]![0] + (attrs.pads as [number, number][])[ax]![1] !== 0)) return fail('pads the dynamic axis');
        break;
      case n.op === 'cat':
        if (any((ax) => attrs.axis === ax)) return fail('concatenates along the dynamic axis');
        break;
      case n.op === 'reshape':
        if (!g.value(n.outputs[0]!).shape.includes(bucket)) return fail('merges or splits the dynamic axis');
        break;
      default:
        return fail('is not known to be exact under padding');
    }
    for (const o of n.outputs) {
      const axes = new Set<number>();
      g.value(o).shape.forEach((d, ax) => { if (d === bucket) axes.add(ax); });
      if (axes.size > 0) dyn.set(o, axes);
    }
  }
  return { exact: true, outputAxes: g.outputs.map((o) => [...(dyn.get(o) ?? [])]) };
}

/** Slices `axes` of `x` back to `size` (a view). */
export function unpad(x: Tensor, axes: readonly number[], size: number): Tensor {
  if (axes.length === 0) return x;
  const starts = x.shape.map(() => 0);
  const steps = x.shape.map(() => 1);
  const sizes = x.shape.map((d, i) => (axes.includes(i) ? size : d));
  return bind('slice', [x], { starts, steps, sizes });
}
