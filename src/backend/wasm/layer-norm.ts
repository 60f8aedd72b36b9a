// Host side of the float32 layerNorm kernels (layer-norm-kernel.ts): runs layerNormCore,
// layerNormRstd and layerNormCoreGrad when the last axis of each input has stride 1, looping over the kept dimensions that do not
// merge into one row stride; other layouts and dtypes go to the reference. Large inputs are split
// by rows over the thread pool (row-jobs.ts), bit-identical to one thread.

import type { KernelInput } from '../backend.js';
import type { WasmHeap } from './memory.js';
import type { ThreadPool } from './threads.js';
import {
  buildLayerNormModule, LAYER_NORM_ROWS_EXPORT, LAYER_NORM_GRAD_ROWS_EXPORT,
  LAYER_NORM_ROWS_PARAMS, LAYER_NORM_GRAD_ROWS_PARAMS, LAYER_NORM_ROWS_TASK_INDEX, LAYER_NORM_GRAD_ROWS_TASK_INDEX,
} from './layer-norm-kernel.js';
import { planRows, forEachRow } from './strided-rows.js';
import { RowJobs, rowParallelMinElements, type RowKernel, type RowSpan } from './row-jobs.js';

/**
 * Elements a gradient row counts for in the split threshold: layerNormCoreGrad reads two inputs
 * and makes four passes where layerNormCore makes three over one.
 */
const GRAD_WORK_PER_ELEMENT = 2;

export class WasmLayerNorm {
  private kernels: { rows: RowKernel; gradRows: RowKernel } | undefined;
  private readonly jobs: RowJobs;

  /** `currentPool` gives the backend's thread pool (it changes with setThreads). */
  constructor(private readonly heap: WasmHeap, currentPool: () => ThreadPool | undefined = () => undefined) {
    this.jobs = new RowJobs(heap, currentPool, () => this.bytes());
  }

  private bytes(): Uint8Array<ArrayBuffer> {
    return buildLayerNormModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
  }

  private fn(): { rows: RowKernel; gradRows: RowKernel } {
    if (this.kernels === undefined) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(this.bytes()), { env: { memory: this.heap.memory } });
      const direct = (name: string) => instance.exports[name] as (...args: number[]) => void;
      this.kernels = {
        rows: { index: LAYER_NORM_ROWS_TASK_INDEX, params: LAYER_NORM_ROWS_PARAMS, direct: direct(LAYER_NORM_ROWS_EXPORT) },
        gradRows: { index: LAYER_NORM_GRAD_ROWS_TASK_INDEX, params: LAYER_NORM_GRAD_ROWS_PARAMS, direct: direct(LAYER_NORM_GRAD_ROWS_EXPORT) },
      };
    }
    return this.kernels;
  }

  /** Whether x (float32, rows along its last axis) has a layout the kernel takes. */
  fits(x: KernelInput): boolean {
    const last = x.shape.length - 1;
    return x.dtype === 'float32' && last >= 0 && (x.strides[last] === 1 || x.shape[last] === 1) && x.shape[last]! > 0;
  }

  /**
   * Normalized rows of x (`rstdOnly` false: the contiguous float32 output has x's shape) or each
   * row's rstd (true: one value per row) into the output at byte address `outPtr`.
   */
  run(x: KernelInput, xPtr: number, outPtr: number, eps: number, rstdOnly: boolean): void {
    const last = x.shape.length - 1;
    const len = x.shape[last]!;
    const keptShape = x.shape.slice(0, last);
    const plan = planRows(keptShape, [x.strides.slice(0, last), contiguousRowStarts(keptShape, rstdOnly ? 1 : len)]);
    if (plan.rowLength === 0) return;
    const inRowStride = plan.innerStrides[0]!;
    const outRowStride = rstdOnly ? 1 : len;
    const spans: RowSpan[] = [];
    forEachRow(plan, [x.offset, 0], ([io, oo]) => {
      spans.push({
        count: plan.rowLength,
        args: (first, n) => [
          outPtr + 4 * (oo! + first * outRowStride), xPtr + 4 * (io! + first * inRowStride), n, len, 4 * inRowStride, eps, rstdOnly ? 1 : 0,
        ],
      });
    });
    this.jobs.run(this.fn().rows, spans, len, rowParallelMinElements.layerNorm);
  }

  /** layerNormCoreGrad of x and g (both fitting: see `fits`) into the contiguous float32 output at `outPtr`. */
  runGrad(x: KernelInput, xPtr: number, g: KernelInput, gPtr: number, outPtr: number, eps: number): void {
    const last = x.shape.length - 1;
    const len = x.shape[last]!;
    const keptShape = x.shape.slice(0, last);
    const plan = planRows(keptShape, [x.strides.slice(0, last), g.strides.slice(0, last), contiguousRowStarts(keptShape, len)]);
    if (plan.rowLength === 0) return;
    const [xRowStride, gRowStride] = plan.innerStrides as [number, number];
    const spans: RowSpan[] = [];
    forEachRow(plan, [x.offset, g.offset, 0], ([xo, go, oo]) => {
      spans.push({
        count: plan.rowLength,
        args: (first, n) => [
          outPtr + 4 * (oo! + first * len), xPtr + 4 * (xo! + first * xRowStride), gPtr + 4 * (go! + first * gRowStride),
          n, len, 4 * xRowStride, 4 * gRowStride, eps,
        ],
      });
    });
    this.jobs.run(this.fn().gradRows, spans, GRAD_WORK_PER_ELEMENT * len, rowParallelMinElements.layerNorm);
  }
}

/** Element strides of a contiguous output's row starts over the kept dimensions (rows of `len`). */
function contiguousRowStarts(keptShape: readonly number[], len: number): number[] {
  const strides: number[] = [];
  for (let d = keptShape.length - 1, s = len; d >= 0; d--) { strides[d] = s; s *= keptShape[d]!; }
  return strides;
}
