// Elementwise reductions dst = dst (op) src. One loop per op so that the hot loop has no
// branch or call per element. int32 results wrap like C integers (sum via `| 0` store, prod via
// Math.imul). 'avg' reduces as a sum; the caller divides once at the end.
import type { CommArray, ReduceOp } from './types.js';

export function reduceInto(dst: CommArray, src: CommArray, op: ReduceOp): void {
  const n = dst.length;
  if (src.length !== n) throw new RangeError(`reduceInto: lengths differ (${dst.length} vs ${src.length})`);
  const isInt = dst instanceof Int32Array;
  switch (op) {
    case 'sum':
    case 'avg':
      for (let i = 0; i < n; i++) dst[i] += src[i]!;
      return;
    case 'prod':
      if (isInt) for (let i = 0; i < n; i++) dst[i] = Math.imul(dst[i]!, src[i]!);
      else for (let i = 0; i < n; i++) dst[i] *= src[i]!;
      return;
    case 'min':
      for (let i = 0; i < n; i++) if (src[i]! < dst[i]!) dst[i] = src[i]!;
      return;
    case 'max':
      for (let i = 0; i < n; i++) if (src[i]! > dst[i]!) dst[i] = src[i]!;
      return;
  }
}

/** Turns a sum over `count` ranks into the mean; int32 means truncate toward zero. */
export function divideInPlace(array: CommArray, count: number): void {
  if (array instanceof Int32Array) {
    for (let i = 0; i < array.length; i++) array[i] = Math.trunc(array[i]! / count);
  } else {
    for (let i = 0; i < array.length; i++) array[i] = array[i]! / count;
  }
}
