// Host side of the SIMD reductions: decides whether a float32 reduction fits the generated row or
// column kernels (the reduced axes must walk memory as one dimension) and drives them over the
// kept dimensions. Anything else (other layouts, dtypes, prod, empty reductions) returns
// undefined, and the backend runs the reference kernel instead. Large reductions are split over
// the thread pool by kept elements only (rows of the row kernel, columns of the column kernel),
// never along a reduced axis, so every output adds its values in the same order as on one thread.

import type { WasmHeap } from './memory.js';
import type { ThreadPool } from './threads.js';
import { buildReduceModule, reduceTaskIndex, REDUCE_KERNEL_PARAMS, SIMD_REDUCE_OPS, type SimdReduceOp } from './reduce-kernel.js';
import { planRows, forEachRow } from './strided-rows.js';
import { RowJobs, rowParallelMinElements, type RowKernel, type RowSpan } from './row-jobs.js';

const OPS = new Set<string>(SIMD_REDUCE_OPS);

/** Where the input and output live, as the backend resolved them. */
export interface ReduceOperands {
  readonly inPtr: number;
  readonly inOffset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly axes: readonly number[];
  readonly outPtr: number;
}

/**
 * Columns per unit of a split column reduction are a multiple of this: the sum kernel takes
 * sixteen columns at a time (a 64-byte line per row) before falling back to four and one.
 */
const COLUMN_ALIGN = 16;

export class WasmReduce {
  private kernels: Map<string, RowKernel> | undefined;
  private readonly jobs: RowJobs;

  /** `currentPool` gives the backend's thread pool (it changes with setThreads). */
  constructor(private readonly heap: WasmHeap, currentPool: () => ThreadPool | undefined = () => undefined) {
    this.jobs = new RowJobs(heap, currentPool, () => this.bytes());
  }

  private bytes(): Uint8Array<ArrayBuffer> {
    return buildReduceModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
  }

  handles(prim: string): prim is SimdReduceOp {
    return OPS.has(prim);
  }

  private fn(kind: 'rows' | 'cols', op: SimdReduceOp): RowKernel {
    if (this.kernels === undefined) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(this.bytes()), { env: { memory: this.heap.memory } });
      this.kernels = new Map();
      for (const o of SIMD_REDUCE_OPS) {
        for (const k of ['rows', 'cols'] as const) {
          const direct = instance.exports[`${k}_${o}`] as (...args: number[]) => void;
          this.kernels.set(`${k}_${o}`, { index: reduceTaskIndex(k, o), params: REDUCE_KERNEL_PARAMS, direct });
        }
      }
    }
    return this.kernels.get(`${kind}_${op}`)!;
  }

  /**
   * Reduces float32 `x` over `axes` into the contiguous output at `outPtr` (kept dimensions in
   * order). Returns false, having written nothing, when the layout does not fit.
   */
  run(op: SimdReduceOp, o: ReduceOperands): boolean {
    const axisSet = new Set(o.axes);
    const keptShape: number[] = [], keptStrides: number[] = [], redShape: number[] = [], redStrides: number[] = [];
    o.shape.forEach((size, d) => {
      if (axisSet.has(d)) { redShape.push(size); redStrides.push(o.strides[d]!); }
      else { keptShape.push(size); keptStrides.push(o.strides[d]!); }
    });
    // The reduced axes may be visited in any order (sum/max/min are order-free up to rounding):
    // outermost stride first, so that a permuted view (the gradient of a transposed activation,
    // summed whole) still merges into one contiguous row instead of falling back.
    const byStride = redShape.map((_, i) => i).sort((i, j) => redStrides[j]! - redStrides[i]!);
    const red = planRows(byStride.map((i) => redShape[i]!), [byStride.map((i) => redStrides[i]!)]);
    if (red.rowLength === 0) return false;
    if (red.outerShape.length > 0) return this.runInTwoStages(op, o);
    const outStrides: number[] = [];
    for (let d = keptShape.length - 1, s = 1; d >= 0; d--) { outStrides[d] = s; s *= keptShape[d]!; }
    const kept = planRows(keptShape, [keptStrides, outStrides]);
    if (kept.rowLength === 0) return false;
    const len = red.rowLength;
    const redStride = red.innerStrides[0]!;
    const keptInner = kept.innerStrides[0]!;
    // Either kernel's items (rows or columns) are consecutive outputs, at keptInner apart in the input.
    const spans = (lastArgs: readonly [number, number]): RowSpan[] => {
      const list: RowSpan[] = [];
      forEachRow(kept, [o.inOffset, 0], ([io, oo]) => {
        list.push({ count: kept.rowLength, args: (first, n) => [o.outPtr + 4 * (oo! + first), o.inPtr + 4 * (io! + first * keptInner), n, ...lastArgs] });
      });
      return list;
    };
    if (redStride === 1 || len === 1) {
      this.jobs.run(this.fn('rows', op), spans([len, 4 * keptInner]), len, rowParallelMinElements.reduce);
      return true;
    }
    if (keptInner === 1) {
      this.jobs.run(this.fn('cols', op), spans([len, 4 * redStride]), len, rowParallelMinElements.reduce, COLUMN_ALIGN);
      return true;
    }
    return false;
  }

  /**
   * Reduced axes with kept ones between them (a conv bias gradient: sum over N, H, W of
   * [N, C, H, W]): reduce the innermost run of reduced axes into a temporary, then the rest. For
   * sum this adds one f32 rounding of the partial sums compared with the reference's single pass.
   */
  private runInTwoStages(op: SimdReduceOp, o: ReduceOperands): boolean {
    const sorted = [...o.axes].sort((a, b) => a - b);
    let j = sorted.length - 1;
    while (j > 0 && sorted[j - 1] === sorted[j]! - 1) j--;
    let lastGroup = sorted.slice(j);
    let rest = sorted.slice(0, j);
    if (rest.length === 0) {
      // Adjacent reduced axes that do not merge in memory (a permuted view: [B, T, C] stored as
      // [B, C, T], summed over B and T): first the one with the smallest stride, then the others.
      const inner = sorted.reduce((best, a) => (o.strides[a]! < o.strides[best]! ? a : best), sorted[0]!);
      lastGroup = [inner];
      rest = sorted.filter((a) => a !== inner);
      if (rest.length === 0) return false;
    }
    const midShape = o.shape.filter((_, d) => !lastGroup.includes(d));
    const midStrides: number[] = [];
    for (let d = midShape.length - 1, s = 1; d >= 0; d--) { midStrides[d] = s; s *= midShape[d]!; }
    const temp = this.heap.alloc(4 * Math.max(1, midShape.reduce((a, b) => a * b, 1)));
    try {
      if (!this.run(op, { ...o, axes: lastGroup, outPtr: temp })) return false;
      // midShape lacks lastGroup's axes: the remaining axes shift down past each one removed before them.
      const midAxes = rest.map((a) => a - lastGroup.filter((l) => l < a).length);
      return this.run(op, { inPtr: temp, inOffset: 0, shape: midShape, strides: midStrides, axes: midAxes, outPtr: o.outPtr });
    } finally {
      this.heap.free(temp);
    }
  }
}
