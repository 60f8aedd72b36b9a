// argmax/argmin along one axis read straight from a strided view of the heap (max-pooling asks
// this of its window view). The reference first gathers the view into a permuted copy; the
// rule is the same: ties keep the first index, and NaN wins (as in PyTorch).

import type { TypedArray } from '../../core/dtype.js';
import { planRows } from './strided-rows.js';

/** out[i] (contiguous over the kept dims) = index of the extreme value along `axis`. */
export function argReduceStrided(
  wantMax: boolean, src: TypedArray, shape: readonly number[], strides: readonly number[], offset: number,
  axis: number, out: TypedArray,
): void {
  const len = shape[axis]!;
  const step = strides[axis]!;
  const keptShape = shape.filter((_, d) => d !== axis);
  const keptStrides = strides.filter((_, d) => d !== axis);
  const outStrides: number[] = [];
  for (let d = keptShape.length - 1, s = 1; d >= 0; d--) { outStrides[d] = s; s *= keptShape[d]!; }
  const plan = planRows(keptShape, [outStrides, keptStrides]);
  const n = plan.rowLength;
  if (n === 0 || len === 0) return;
  const os = plan.innerStrides[0]!, is = plan.innerStrides[1]!;
  const outer = plan.outerShape;
  const rank = outer.length;
  const oOuter = plan.outerStrides[0]!, iOuter = plan.outerStrides[1]!;
  const index = new Array<number>(rank).fill(0);
  let o = 0, p = offset;
  for (;;) {
    for (let i = 0, oo = o, pp = p; i < n; i++, oo += os, pp += is) {
      let best = 0;
      let bestV = src[pp]!;
      if (!Number.isNaN(bestV)) {
        for (let j = 1, q = pp + step; j < len; j++, q += step) {
          const v = src[q]!;
          if (Number.isNaN(v)) { best = j; break; }
          if (wantMax ? v > bestV : v < bestV) { best = j; bestV = v; }
        }
      }
      out[oo] = best;
    }
    let k = rank - 1;
    for (; k >= 0; k--) {
      o += oOuter[k]!;
      p += iOuter[k]!;
      if (++index[k]! < outer[k]!) break;
      o -= oOuter[k]! * outer[k]!;
      p -= iOuter[k]! * outer[k]!;
      index[k] = 0;
    }
    if (k < 0) return;
  }
}
