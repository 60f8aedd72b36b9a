// Strided copies between typed-array views of the heap, row by row: contiguous rows move with
// TypedArray.set (a memmove), others with a plain loop. Used by the data-movement primitives
// (contiguous, pad, cat, sliceBackward, flip), which only place values and so give exactly the
// reference's results for every dtype.

import type { TypedArray } from '../../core/dtype.js';
import { planRows, forEachRow } from './strided-rows.js';

/** dst[dstOffset + Σ i·dstStrides] = src[srcOffset + Σ i·srcStrides] over `shape` (element units). */
export function copyStrided(
  shape: readonly number[],
  src: TypedArray, srcStrides: readonly number[], srcOffset: number,
  dst: TypedArray, dstStrides: readonly number[], dstOffset: number,
): void {
  const plan = planRows(shape, [dstStrides, srcStrides]);
  const n = plan.rowLength;
  const [ds, ss] = plan.innerStrides as [number, number];
  forEachRow(plan, [dstOffset, srcOffset], ([d, s]) => {
    if (ds === 1 && ss === 1) {
      dst.set(src.subarray(s!, s! + n), d!);
    } else {
      for (let i = 0, o = d!, p = s!; i < n; i++, o += ds, p += ss) dst[o] = src[p]!;
    }
  });
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
