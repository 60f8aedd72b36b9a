// Strided reads and writes over flat arrays: the only layout logic the cpu kernels need.
import type { KernelInput } from '../backend.js';
import type { TypedArray } from '../../core/dtype.js';
import { isContiguousLayout, sizeOf } from '../../core/shape.js';
import { gatherStrided } from '../../core/tensor.js';

export function arrayOf(input: KernelInput): TypedArray {
  return input.storage.handle as TypedArray;
}

/** The input's values in row-major order: a zero-copy subarray when contiguous, else a gathered copy. */
export function contiguousValues(input: KernelInput): TypedArray {
  const arr = arrayOf(input);
  const n = sizeOf(input.shape);
  if (isContiguousLayout(input.shape, input.strides)) return arr.subarray(input.offset, input.offset + n) as TypedArray;
  const out = new (arr.constructor as { new (n: number): TypedArray })(n);
  gatherStrided(arr, input.shape, input.strides, input.offset, out);
  return out;
}

/** Calls fn(position) for every element of a strided layout, in row-major order. */
export function forEachPosition(shape: readonly number[], strides: readonly number[], offset: number, fn: (pos: number, i: number) => void): void {
  const rank = shape.length;
  const n = sizeOf(shape);
  if (n === 0) return;
  if (rank === 0) {
    fn(offset, 0);
    return;
  }
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const lastN = shape[last]!, lastS = strides[last]!;
  let pos = offset;
  let i = 0;
  for (;;) {
    for (let j = 0, p = pos; j < lastN; j++, p += lastS) fn(p, i++);
    let d = last - 1;
    while (d >= 0) {
      idx[d]!++;
      pos += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      pos -= strides[d]! * shape[d]!;
      idx[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

/** dst[layout] = src (row-major values). */
export function scatterStrided(dst: TypedArray, shape: readonly number[], strides: readonly number[], offset: number, src: ArrayLike<number>): void {
  if (isContiguousLayout(shape, strides)) {
    (dst as Float64Array).set(src as Float64Array, offset);
    return;
  }
  forEachPosition(shape, strides, offset, (p, i) => { dst[p] = src[i]!; });
}

/** dst[layout] += src (row-major values); overlapping layouts accumulate. */
export function accumulateStrided(dst: TypedArray, shape: readonly number[], strides: readonly number[], offset: number, src: ArrayLike<number>): void {
  forEachPosition(shape, strides, offset, (p, i) => { dst[p] = dst[p]! + src[i]!; });
}

/** Strides of a row-major array of `shape`, reordered by `perm` (the layout of a permuted view). */
export function permutedLayout(input: KernelInput, perm: readonly number[]): { shape: number[]; strides: number[] } {
  return { shape: perm.map((p) => input.shape[p]!), strides: perm.map((p) => input.strides[p]!) };
}
