// gather and scatterAdd straight on heap views (the reference walks a copy of every operand
// and recomputes each element's multi-index). Same order of additions as the reference, so the
// results are identical; an index out of range returns false and the caller lets the reference
// kernel report it.

import type { TypedArray } from '../../core/dtype.js';
import { planRows } from './strided-rows.js';
import {
  buildGatherScatterModule, CHECK_ROW_EXPORT, GATHER_ROW_EXPORT, SCATTER_ADD_ROW_EXPORT, type CheckRow, type GatherRow, type ScatterAddRow,
} from './gather-scatter-kernel.js';

/** Visits every element of `shape` for three operands, calling row(n, [o0, o1, o2], inner strides) per row. */
function forRows(
  shape: readonly number[], strides: readonly (readonly number[])[], offsets: readonly number[],
  row: (n: number, o0: number, o1: number, o2: number, s0: number, s1: number, s2: number) => boolean,
): boolean {
  const plan = planRows(shape, strides);
  const n = plan.rowLength;
  if (n === 0) return true;
  const [s0, s1, s2] = plan.innerStrides as [number, number, number];
  const outer = plan.outerShape;
  const rank = outer.length;
  const index = new Array<number>(rank).fill(0);
  let [o0, o1, o2] = offsets as [number, number, number];
  for (;;) {
    if (!row(n, o0, o1, o2, s0, s1, s2)) return false;
    let k = rank - 1;
    for (; k >= 0; k--) {
      o0 += plan.outerStrides[0]![k]!; o1 += plan.outerStrides[1]![k]!; o2 += plan.outerStrides[2]![k]!;
      if (++index[k]! < outer[k]!) break;
      o0 -= plan.outerStrides[0]![k]! * outer[k]!; o1 -= plan.outerStrides[1]![k]! * outer[k]!; o2 -= plan.outerStrides[2]![k]! * outer[k]!;
      index[k] = 0;
    }
    if (k < 0) return true;
  }
}

export interface StridedView {
  readonly data: TypedArray;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/** out (contiguous, index's shape) = x[… index[…] along axis …]; false if an index is out of range. */
export function gatherStrided(x: StridedView, index: StridedView, axis: number, out: TypedArray): boolean {
  const n = x.shape[axis]!;
  const axisStride = x.strides[axis]!;
  const outStrides: number[] = [];
  for (let d = index.shape.length - 1, s = 1; d >= 0; d--) { outStrides[d] = s; s *= index.shape[d]!; }
  const xPartial = x.strides.map((s, d) => (d === axis ? 0 : s));
  const iv = index.data, xv = x.data;
  return forRows(index.shape, [outStrides, index.strides, xPartial], [0, index.offset, x.offset], (len, o, i, p, so, si, sp) => {
    for (let j = 0; j < len; j++, o += so, i += si, p += sp) {
      const v = iv[i]!;
      if (!(v >= 0 && v < n)) return false;
      out[o] = xv[p + v * axisStride]!;
    }
    return true;
  });
}

/** dst (contiguous, already holding base) [… index[…] along axis …] += src[…]; false if an index is out of range (dst untouched). */
export function scatterAddStrided(dst: TypedArray, dstShape: readonly number[], index: StridedView, src: StridedView, axis: number): boolean {
  const n = dstShape[axis]!;
  const cs: number[] = [];
  for (let d = dstShape.length - 1, s = 1; d >= 0; d--) { cs[d] = s; s *= dstShape[d]!; }
  const axisStride = cs[axis]!;
  const dPartial = index.shape.map((_, d) => (d === axis ? 0 : cs[d]!));
  const iv = index.data, sv = src.data;
  // Validate first, so that an error leaves nothing half-added.
  const valid = forRows(index.shape, [index.strides, index.strides, index.strides], [index.offset, index.offset, index.offset], (len, i, _a, _b, si) => {
    for (let j = 0; j < len; j++, i += si) {
      const v = iv[i]!;
      if (!(v >= 0 && v < n)) return false;
    }
    return true;
  });
  if (!valid) return false;
  return forRows(index.shape, [index.strides, src.strides, dPartial], [index.offset, src.offset, 0], (len, i, p, d, si, sp, sd) => {
    for (let j = 0; j < len; j++, i += si, p += sp, d += sd) {
      const pos = d + iv[i]! * axisStride;
      dst[pos] = dst[pos]! + sv[p]!;
    }
    return true;
  });
}

/** A strided operand in the heap: the byte address of its storage's element 0, and its layout in elements. */
export interface HeapView {
  readonly ptr: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * gather and scatterAdd with their row loops in wasm (gather-scatter-kernel.ts): 4-byte values
 * (gather copies bits; scatterAdd adds float32), int32 indices. Max-pooling's gradient path runs
 * through these: a gather of each window's maximum and its adjoint, a scatter-add.
 */
export class WasmGatherScatter {
  private kernels: { gatherRow: GatherRow; checkRow: CheckRow; scatterAddRow: ScatterAddRow } | undefined;

  constructor(private readonly memory: WebAssembly.Memory, private readonly maxPages: number, private readonly shared: boolean) {}

  private get k(): { gatherRow: GatherRow; checkRow: CheckRow; scatterAddRow: ScatterAddRow } {
    if (this.kernels === undefined) {
      const bytes = buildGatherScatterModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.maxPages, shared: this.shared });
      const e = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: this.memory } }).exports;
      this.kernels = {
        gatherRow: e[GATHER_ROW_EXPORT] as GatherRow, checkRow: e[CHECK_ROW_EXPORT] as CheckRow, scatterAddRow: e[SCATTER_ADD_ROW_EXPORT] as ScatterAddRow,
      };
    }
    return this.kernels;
  }

  /** out (contiguous, index's shape, at byte address outPtr) = x gathered along axis; false if an index is out of range. */
  gather(x: HeapView, index: HeapView, axis: number, outPtr: number): boolean {
    const { gatherRow } = this.k;
    const n = x.shape[axis]!;
    const axisStride = 4 * x.strides[axis]!;
    const outStrides: number[] = [];
    for (let d = index.shape.length - 1, s = 1; d >= 0; d--) { outStrides[d] = s; s *= index.shape[d]!; }
    const xPartial = x.strides.map((s, d) => (d === axis ? 0 : s));
    return forRows(index.shape, [outStrides, index.strides, xPartial], [0, index.offset, x.offset], (len, o, i, p, so, si, sp) =>
      gatherRow(len, outPtr + 4 * o, 4 * so, index.ptr + 4 * i, 4 * si, x.ptr + 4 * p, 4 * sp, axisStride, n) === 1);
  }

  /** float32 dst (contiguous, at dstPtr, already holding base) [… index …] += src; false if an index is out of range (dst untouched). */
  scatterAdd(dstPtr: number, dstShape: readonly number[], index: HeapView, src: HeapView, axis: number): boolean {
    const { checkRow, scatterAddRow } = this.k;
    const n = dstShape[axis]!;
    const cs: number[] = [];
    for (let d = dstShape.length - 1, s = 1; d >= 0; d--) { cs[d] = s; s *= dstShape[d]!; }
    const axisStride = 4 * cs[axis]!;
    const dPartial = index.shape.map((_, d) => (d === axis ? 0 : cs[d]!));
    const valid = forRows(index.shape, [index.strides, index.strides, index.strides], [index.offset, index.offset, index.offset], (len, i, _a, _b, si) =>
      checkRow(len, index.ptr + 4 * i, 4 * si, n) === 1);
    if (!valid) return false;
    return forRows(index.shape, [index.strides, src.strides, dPartial], [index.offset, src.offset, 0], (len, i, p, d, si, sp, sd) => {
      scatterAddRow(len, index.ptr + 4 * i, 4 * si, src.ptr + 4 * p, 4 * sp, dstPtr + 4 * d, 4 * sd, axisStride);
      return true;
    });
  }
}
