// The kernel IR: what a generated loop nest computes, independent of the language it is emitted in.
//
// A kernel iterates over `shape` (the iteration space). Each input is read through a strided layout
// over the iteration space (stride 0 broadcasts, any view composes into strides and an offset). The
// body is a list of scalar expressions in SSA form (loads, literals, primitive scalar ops); the last
// one is the result. Without `reduce` the result is stored at every point through the output layout;
// with `reduce` the reduced axes are folded (sum/prod/max/min) and one value is stored per point of
// the remaining axes (row-major, contiguous). Emitters: js.ts (JavaScript for the cpu backend); a
// WebAssembly emitter reads the same structure (loops, strides, loads, scalar ops, stores).
import type { DType } from '../../core/dtype.js';
import type { ReduceOp } from '../../ops/primitives.js';

export interface KernelInputLayout {
  dtype: DType;
  /** Element stride per iteration axis (0 = broadcast). */
  strides: number[];
  /** Element offset of the iteration origin in the input buffer. */
  offset: number;
}

export type ScalarExpr =
  | { kind: 'load'; input: number }
  | { kind: 'literal'; value: number; dtype: DType }
  /** A primitive applied to earlier expressions; `dtype` is its result dtype (values are rounded to it). */
  | { kind: 'op'; op: string; args: number[]; dtype: DType; attrs?: { dtype?: DType } };

export interface KernelSpec {
  shape: number[];
  inputs: KernelInputLayout[];
  body: ScalarExpr[];
  outDtype: DType;
  /** Output layout over the iteration space (elementwise kernels); contiguous when absent. */
  outStrides?: number[];
  outOffset?: number;
  reduce?: { op: ReduceOp; axes: number[] };
}

/** The structure a compiled kernel is cached by (everything but the buffers). */
export function kernelKey(spec: KernelSpec): string {
  return JSON.stringify(spec);
}

/**
 * Merges adjacent iteration axes that every input and the output traverse as one (the inner
 * stride times the inner size equals the outer stride), so loop nests get as shallow as possible.
 * Reduced and kept axes never merge with each other.
 */
export function simplifyKernel(spec: KernelSpec): KernelSpec {
  const rank = spec.shape.length;
  if (rank <= 1) return spec;
  const outStrides = spec.outStrides ?? contiguous(spec.shape);
  const reduced = new Set(spec.reduce?.axes ?? []);
  // Reductions store contiguously over kept axes only, so merging is decided on the inputs there.
  const layouts = spec.reduce === undefined ? [...spec.inputs.map((i) => i.strides), outStrides] : spec.inputs.map((i) => i.strides);
  const shape: number[] = [spec.shape[0]!];
  const strides: number[][] = layouts.map((s) => [s[0]!]);
  const isRed: boolean[] = [reduced.has(0)];
  for (let d = 1; d < rank; d++) {
    const last = shape.length - 1;
    const n = spec.shape[d]!;
    const canMerge = isRed[last] === reduced.has(d) && layouts.every((s, k) => strides[k]![last] === s[d]! * n);
    if (canMerge) {
      shape[last] = shape[last]! * n;
      layouts.forEach((s, k) => { strides[k]![last] = s[d]!; });
    } else {
      shape.push(n);
      layouts.forEach((s, k) => strides[k]!.push(s[d]!));
      isRed.push(reduced.has(d));
    }
  }
  if (shape.length === rank) return spec;
  const out: KernelSpec = {
    ...spec,
    shape,
    inputs: spec.inputs.map((inp, k) => ({ ...inp, strides: strides[k]! })),
  };
  if (spec.reduce === undefined) out.outStrides = strides[spec.inputs.length]!;
  else out.reduce = { op: spec.reduce.op, axes: isRed.flatMap((r, i) => (r ? [i] : [])) };
  return out;
}

export function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}
