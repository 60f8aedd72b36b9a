// Strided copies between typed-array views of the heap. Used by the data-movement primitives
// (contiguous, pad, cat, sliceBackward, flip, casts to float) and, accumulating, by
// unfoldBackward (col2im): they only place (or add) values, so they give exactly the reference's
// results. Rows are walked with an inline odometer, not a callback per row: im2col copies rows of
// kernel width (often 3 elements), where a call per row cost more than the copy.

import type { TypedArray } from '../../core/dtype.js';
import { planRows } from './strided-rows.js';

/**
 * dst[dstOffset + Σ i·dstStrides] = src[srcOffset + Σ i·srcStrides] over `shape` (element
 * units), or += with `accumulate`. With accumulate, positions that dst visits more than once
 * (overlapping windows) add up.
 */
export function copyStrided(
  shape: readonly number[],
  src: TypedArray, srcStrides: readonly number[], srcOffset: number,
  dst: TypedArray, dstStrides: readonly number[], dstOffset: number,
  accumulate = false,
): void {
  const plan = planRows(shape, [dstStrides, srcStrides]);
  const n = plan.rowLength;
  if (n === 0) return;
  const ds = plan.innerStrides[0]!, ss = plan.innerStrides[1]!;
  const outer = plan.outerShape;
  const rank = outer.length;
  const dOuter = plan.outerStrides[0]!, sOuter = plan.outerStrides[1]!;
  const index = new Array<number>(rank).fill(0);
  const memmove = !accumulate && ds === 1 && ss === 1 && n >= 16;
  let d = dstOffset, s = srcOffset;
  for (;;) {
    if (memmove) dst.set(src.subarray(s, s + n), d);
    else if (accumulate) for (let i = 0, o = d, p = s; i < n; i++, o += ds, p += ss) dst[o]! += src[p]!;
    else for (let i = 0, o = d, p = s; i < n; i++, o += ds, p += ss) dst[o] = src[p]!;
    // Next row: odometer over the outer dimensions, innermost first.
    let k = rank - 1;
    for (; k >= 0; k--) {
      d += dOuter[k]!;
      s += sOuter[k]!;
      if (++index[k]! < outer[k]!) break;
      d -= dOuter[k]! * outer[k]!;
      s -= sOuter[k]! * outer[k]!;
      index[k] = 0;
    }
    if (k < 0) return;
  }
}

/** Row-major strides of a shape. */
export function contiguousStridesOf(shape: readonly number[]): number[] {
  const strides: number[] = [];
  for (let d = shape.length - 1, s = 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  return strides;
}
