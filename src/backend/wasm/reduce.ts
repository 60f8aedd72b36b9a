// Host side of the SIMD reductions: decides whether a float32 reduction fits the generated row or
// column kernels (the reduced axes must walk memory as one dimension) and drives them over the
// kept dimensions. Anything else (other layouts, dtypes, prod, empty reductions) returns
// undefined, and the backend runs the reference kernel instead.

import type { WasmHeap } from './memory.js';
import { buildReduceModule, SIMD_REDUCE_OPS, type SimdReduceOp } from './reduce-kernel.js';
import { planRows, forEachRow } from './strided-rows.js';

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

type RowsOrCols = (out: number, inp: number, a: number, b: number, c: number) => void;

export class WasmReduce {
  private exports: Record<string, RowsOrCols> | undefined;

  constructor(private readonly heap: WasmHeap) {}

  handles(prim: string): prim is SimdReduceOp {
    return OPS.has(prim);
  }

  private fn(name: string): RowsOrCols {
    if (this.exports === undefined) {
      const bytes = buildReduceModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: this.heap.memory } });
      this.exports = instance.exports as Record<string, RowsOrCols>;
    }
    return this.exports[name]!;
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
    if (redStride === 1 || len === 1) {
      const rows = this.fn(`rows_${op}`);
      forEachRow(kept, [o.inOffset, 0], ([io, oo]) => rows(o.outPtr + 4 * oo!, o.inPtr + 4 * io!, kept.rowLength, len, 4 * keptInner));
      return true;
    }
    if (keptInner === 1) {
      const cols = this.fn(`cols_${op}`);
      forEachRow(kept, [o.inOffset, 0], ([io, oo]) => cols(o.outPtr + 4 * oo!, o.inPtr + 4 * io!, kept.rowLength, len, 4 * redStride));
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
