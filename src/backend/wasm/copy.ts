// Strided copies between typed-array views of the heap. Used by the data-movement primitives
// (contiguous, pad, cat, sliceBackward, flip, casts to float) and, accumulating, by
// unfoldBackward (col2im): they only place (or add) values, so they give exactly the reference's
// results. Rows are walked with an inline odometer, not a callback per row: im2col copies rows of
// kernel width (often 3 elements), where a call per row cost more than the copy.

import type { TypedArray } from '../../core/dtype.js';
import { planRows, forEachRow } from './strided-rows.js';

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

/** The generated 4-D copy (copy-kernel.ts): byte addresses and strides, innermost size last. */
export type Copy4 = (dst: number, src: number, n0: number, n1: number, n2: number, n3: number,
  ds0: number, ds1: number, ds2: number, ds3: number, ss0: number, ss1: number, ss2: number, ss3: number, accumulate: number) => void;

/**
 * copyStrided for 4-byte elements through the generated kernel: the innermost four collapsed
 * dimensions loop in wasm, any further ones here. Addresses in bytes, strides and offsets in
 * elements.
 */
export function copyStrided4(
  copy4: Copy4, shape: readonly number[],
  srcPtr: number, srcStrides: readonly number[], srcOffset: number,
  dstPtr: number, dstStrides: readonly number[], dstOffset: number,
  accumulate = false,
): void {
  const plan = planRows(shape, [dstStrides, srcStrides]);
  if (plan.rowLength === 0) return;
  const dims = [...plan.outerShape, plan.rowLength];
  const dS = [...plan.outerStrides[0]!, plan.innerStrides[0]!];
  const sS = [...plan.outerStrides[1]!, plan.innerStrides[1]!];
  while (dims.length < 4) { dims.unshift(1); dS.unshift(0); sS.unshift(0); }
  const inner = dims.length - 4;
  const [n0, n1, n2, n3] = dims.slice(inner) as [number, number, number, number];
  const [d0, d1, d2, d3] = dS.slice(inner).map((s) => 4 * s) as [number, number, number, number];
  const [s0, s1, s2, s3] = sS.slice(inner).map((s) => 4 * s) as [number, number, number, number];
  const rest = { rowLength: 1, innerStrides: [0, 0], outerShape: dims.slice(0, inner), outerStrides: [dS.slice(0, inner), sS.slice(0, inner)] };
  forEachRow(rest, [dstOffset, srcOffset], ([d, s]) => {
    copy4(dstPtr + 4 * d!, srcPtr + 4 * s!, n0, n1, n2, n3, d0, d1, d2, d3, s0, s1, s2, s3, accumulate ? 1 : 0);
  });
}
