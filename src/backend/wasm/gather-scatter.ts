// gather and scatterAdd straight on heap views (the reference walks a copy of every operand
// and recomputes each element's multi-index). Same order of additions as the reference, so the
// results are identical; an index out of range returns false and the caller lets the reference
// kernel report it.

import type { TypedArray } from '../../core/dtype.js';
import { forEachRow, planRows, type RowPlan } from './strided-rows.js';
import {
  buildGatherScatterModule, CHECK_ROW_EXPORT, GATHER_ROW_EXPORT, SCATTER_ADD_ROW_EXPORT, type CheckRow, type GatherRow, type ScatterAddRow,
  GatherScatterParam, GatherScatterMode, GatherScatterUnit, GATHER_SCATTER_PARAM_WORDS, GATHER_SCATTER_UNIT_WORDS,
} from './gather-scatter-kernel.js';
import type { WasmHeap } from './memory.js';
import type { KernelModule, ThreadPool } from './threads.js';
import { PoolModules } from './pool-modules.js';

/** Below this many elements a job runs row by row on the calling thread (waking workers costs tens of µs). */
const PARALLEL_MIN_ELEMENTS = 1 << 15;
/** Units per thread, so that a late-waking or slowed thread delays the job by less. */
const UNITS_PER_THREAD = 4;

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
 *
 * Large jobs are split over the thread pool along one axis of the index other than `axis`
 * (`splitAxis`): every element is still computed by the same row loop, and every output element
 * of a scatter-add still receives its contributions from one unit in the order a single thread
 * adds them (contributions to one element differ only in their coordinate along `axis`), so the
 * results are bit-identical to the single-threaded ones whatever the thread count.
 */
export class WasmGatherScatter {
  private kernels: { gatherRow: GatherRow; checkRow: CheckRow; scatterAddRow: ScatterAddRow } | undefined;
  private readonly modules = new PoolModules();
  private params: number | undefined;

  constructor(private readonly heap: WasmHeap, private readonly currentPool: () => ThreadPool | undefined = () => undefined) {}

  private get k(): { gatherRow: GatherRow; checkRow: CheckRow; scatterAddRow: ScatterAddRow } {
    if (this.kernels === undefined) {
      const e = new WebAssembly.Instance(new WebAssembly.Module(this.moduleBytes()), { env: { memory: this.heap.memory } }).exports;
      this.kernels = {
        gatherRow: e[GATHER_ROW_EXPORT] as GatherRow, checkRow: e[CHECK_ROW_EXPORT] as CheckRow, scatterAddRow: e[SCATTER_ADD_ROW_EXPORT] as ScatterAddRow,
      };
    }
    return this.kernels;
  }

  private moduleBytes(): Uint8Array<ArrayBuffer> {
    return buildGatherScatterModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
  }

  /** The pool when a job of `elements` over an index of `shape` is worth splitting along `splitAxis`. */
  private parallelPool(shape: readonly number[], axis: number): { pool: ThreadPool; split: number } | undefined {
    const pool = this.currentPool();
    if (pool === undefined || pool.threads === 1) return undefined;
    let elements = 1;
    for (const d of shape) elements *= d;
    if (elements < PARALLEL_MIN_ELEMENTS) return undefined;
    const split = splitAxis(shape, axis);
    return split === undefined ? undefined : { pool, split };
  }

  /** out (contiguous, index's shape, at byte address outPtr) = x gathered along axis; false if an index is out of range. */
  gather(x: HeapView, index: HeapView, axis: number, outPtr: number): boolean {
    const n = x.shape[axis]!;
    const axisStride = 4 * x.strides[axis]!;
    const outStrides: number[] = [];
    for (let d = index.shape.length - 1, s = 1; d >= 0; d--) { outStrides[d] = s; s *= index.shape[d]!; }
    const xPartial = x.strides.map((s, d) => (d === axis ? 0 : s));
    const strides = [outStrides, index.strides, xPartial];
    const bases = [outPtr, index.ptr + 4 * index.offset, x.ptr + 4 * x.offset];
    const parallel = this.parallelPool(index.shape, axis);
    if (parallel !== undefined) {
      return this.runSplit(parallel.pool, GatherScatterMode.gather, index.shape, parallel.split, strides, bases, axisStride, n, undefined);
    }
    const { gatherRow } = this.k;
    return forRows(index.shape, strides, [0, index.offset, x.offset], (len, o, i, p, so, si, sp) =>
      gatherRow(len, outPtr + 4 * o, 4 * so, index.ptr + 4 * i, 4 * si, x.ptr + 4 * p, 4 * sp, axisStride, n) === 1);
  }

  /**
   * float32 dst (contiguous, at dstPtr) [… index …] += src; false if an index is out of range, with
   * dst then partly written (discard it). dst holds the base already, or with `zeroFirst` it is
   * uninitialized and this zeroes it first (in parallel, when the job is split).
   */
  scatterAdd(dstPtr: number, dstShape: readonly number[], index: HeapView, src: HeapView, axis: number, zeroFirst = false): boolean {
    const n = dstShape[axis]!;
    const cs: number[] = [];
    for (let d = dstShape.length - 1, s = 1; d >= 0; d--) { cs[d] = s; s *= dstShape[d]!; }
    const dstBytes = 4 * dstShape.reduce((a, b) => a * b, 1);
    const axisStride = 4 * cs[axis]!;
    const dPartial = index.shape.map((_, d) => (d === axis ? 0 : cs[d]!));
    const parallel = this.parallelPool(index.shape, axis);
    if (parallel !== undefined) {
      const s = parallel.split;
      // Each unit zeroes the slab of dst its rows write into, when those slabs tile dst: dst's axes
      // before the split axis have size one and the index spans dst along it.
      const slabs = zeroFirst && dstShape.slice(0, s).every((d) => d === 1) && dstShape[s] === index.shape[s];
      if (zeroFirst && !slabs) this.heap.i32.fill(0, dstPtr >>> 2, (dstPtr + dstBytes) >>> 2);
      return this.runSplit(parallel.pool, GatherScatterMode.scatterAdd, index.shape, s, [index.strides, src.strides, dPartial],
        [index.ptr + 4 * index.offset, src.ptr + 4 * src.offset, dstPtr], axisStride, n,
        slabs ? { ptr: dstPtr, bytesPerStep: 4 * cs[s]! } : undefined);
    }
    if (zeroFirst) this.heap.i32.fill(0, dstPtr >>> 2, (dstPtr + dstBytes) >>> 2);
    const { checkRow, scatterAddRow } = this.k;
    const valid = forRows(index.shape, [index.strides, index.strides, index.strides], [index.offset, index.offset, index.offset], (len, i, _a, _b, si) =>
      checkRow(len, index.ptr + 4 * i, 4 * si, n) === 1);
    if (!valid) return false;
    return forRows(index.shape, [index.strides, src.strides, dPartial], [index.offset, src.offset, 0], (len, i, p, d, si, sp, sd) => {
      scatterAddRow(len, index.ptr + 4 * i, 4 * si, src.ptr + 4 * p, 4 * sp, dstPtr + 4 * d, 4 * sd, axisStride);
      return true;
    });
  }

  /**
   * One job over the pool: the index's range along `split` cut into units, each unit's rows
   * (walked as forRows walks them, in element strides) written as descriptors of byte addresses.
   * With `zero`, unit u first zeroes dst's bytes over its range of `split`.
   */
  private runSplit(
    pool: ThreadPool, mode: number, shape: readonly number[], split: number, strides: readonly (readonly number[])[],
    bases: readonly number[], axisStride: number, axisSize: number, zero: { ptr: number; bytesPerStep: number } | undefined,
  ): boolean {
    const extent = shape[split]!;
    const units = Math.min(extent, pool.threads * UNITS_PER_THREAD);
    const byteStrides = strides.map((s) => s.map((st) => 4 * st));
    const sub = [...shape];
    // A unit's rows may merge differently from another's (its length along `split` differs), so
    // each unit carries its own row length and inner strides.
    const plans: { from: number; to: number; plan: RowPlan; rows: number }[] = [];
    let totalRows = 0;
    for (let u = 0; u < units; u++) {
      const from = Math.floor((u * extent) / units), to = Math.floor(((u + 1) * extent) / units);
      sub[split] = to - from;
      const plan = planRows(sub, byteStrides);
      const rows = plan.rowLength === 0 ? 0 : plan.outerShape.reduce((a, b) => a * b, 1);
      plans.push({ from, to, plan, rows });
      totalRows += rows;
    }
    const params = (this.params ??= this.heap.alloc(GATHER_SCATTER_PARAM_WORDS * 4));
    const unitsPtr = this.heap.alloc(units * GATHER_SCATTER_UNIT_WORDS * 4);
    const rowsPtr = this.heap.alloc(Math.max(1, totalRows) * 12);
    try {
      const words = this.heap.i32;
      const p = params >>> 2;
      words[p + GatherScatterParam.mode] = mode;
      words[p + GatherScatterParam.axisStride] = axisStride;
      words[p + GatherScatterParam.axisSize] = axisSize;
      words[p + GatherScatterParam.rows] = rowsPtr;
      words[p + GatherScatterParam.units] = unitsPtr;
      let row = 0;
      for (let u = 0; u < units; u++) {
        const { from, to, plan, rows } = plans[u]!;
        const w = (unitsPtr >>> 2) + u * GATHER_SCATTER_UNIT_WORDS;
        words[w + GatherScatterUnit.firstRow] = row;
        words[w + GatherScatterUnit.rowCount] = rows;
        words[w + GatherScatterUnit.zeroFrom] = zero === undefined ? 0 : zero.ptr + from * zero.bytesPerStep;
        words[w + GatherScatterUnit.zeroTo] = zero === undefined ? 0 : zero.ptr + to * zero.bytesPerStep;
        words[w + GatherScatterUnit.status] = 0;
        words[w + GatherScatterUnit.rowLength] = plan.rowLength;
        for (let o = 0; o < 3; o++) words[w + GatherScatterUnit.strides + o] = plan.innerStrides[o]!;
        if (rows === 0) continue;
        const offsets = bases.map((b, o) => b + from * byteStrides[o]![split]!);
        forEachRow(plan, offsets, (at) => {
          const d = (rowsPtr >>> 2) + 3 * row++;
          words[d] = at[0]!; words[d + 1] = at[1]!; words[d + 2] = at[2]!;
        });
      }
      pool.run(this.module(pool), params, units);
      for (let u = 0; u < units; u++) if (words[(unitsPtr >>> 2) + u * GATHER_SCATTER_UNIT_WORDS + GatherScatterUnit.status] !== 1) return false;
      return true;
    } finally {
      this.heap.free(rowsPtr);
      this.heap.free(unitsPtr);
    }
  }

  private module(pool: ThreadPool): KernelModule {
    return this.modules.get(pool, 'gatherScatter', () => this.moduleBytes());
  }
}

/**
 * The axis of the index to split a job along: the first one of size above one other than `axis`
 * (two index elements that differ along it never address one output element of a scatter-add).
 */
export function splitAxis(shape: readonly number[], axis: number): number | undefined {
  for (let d = 0; d < shape.length; d++) if (d !== axis && shape[d]! > 1) return d;
  return undefined;
}
