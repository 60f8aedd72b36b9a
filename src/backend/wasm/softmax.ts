// Host side of the float32 softmax and logSoftmax kernels (softmax-kernel.ts): runs one when the axis is
// the input's last dimension with stride 1 (attention scores, logits), looping over the kept
// dimensions that do not merge into one row stride; other layouts and dtypes go to the reference.
// Large inputs are split by rows over the thread pool (row-jobs.ts), bit-identical to one thread.

import type { KernelInput } from '../backend.js';
import type { WasmHeap } from './memory.js';
import type { ThreadPool } from './threads.js';
import { buildSoftmaxModule, SOFTMAX_ROWS_EXPORT, SOFTMAX_ROWS_PARAMS, SOFTMAX_ROWS_TASK_INDEX, type SoftmaxVariant } from './softmax-kernel.js';
import { planRows, forEachRow } from './strided-rows.js';
import { RowJobs, rowParallelMinElements, type RowKernel, type RowSpan } from './row-jobs.js';

export class WasmSoftmax {
  private kernel: RowKernel | undefined;
  private readonly jobs: RowJobs;

  /** `currentPool` gives the backend's thread pool (it changes with setThreads). */
  constructor(private readonly heap: WasmHeap, currentPool: () => ThreadPool | undefined = () => undefined, private readonly variant: SoftmaxVariant = 'softmax') {
    this.jobs = new RowJobs(heap, currentPool, () => this.bytes());
  }

  private bytes(): Uint8Array<ArrayBuffer> {
    return buildSoftmaxModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared }, this.variant);
  }

  private rowKernel(): RowKernel {
    if (this.kernel === undefined) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(this.bytes()), { env: { memory: this.heap.memory } });
      this.kernel = {
        index: SOFTMAX_ROWS_TASK_INDEX, params: SOFTMAX_ROWS_PARAMS,
        direct: instance.exports[SOFTMAX_ROWS_EXPORT] as (...args: number[]) => void,
      };
    }
    return this.kernel;
  }

  /** Whether x (float32) has a layout the kernel takes along `axis`. */
  fits(x: KernelInput, axis: number): boolean {
    const last = x.shape.length - 1;
    return x.dtype === 'float32' && axis === last && (x.strides[last] === 1 || x.shape[last] === 1) && x.shape[last]! > 0;
  }

  /** Softmax (or logSoftmax) of x along its last axis into the contiguous float32 output at byte address `outPtr`. */
  run(x: KernelInput, xPtr: number, outPtr: number): void {
    const last = x.shape.length - 1;
    const len = x.shape[last]!;
    const keptShape = x.shape.slice(0, last);
    const outStrides: number[] = [];
    for (let d = keptShape.length - 1, s = len; d >= 0; d--) { outStrides[d] = s; s *= keptShape[d]!; }
    const plan = planRows(keptShape, [x.strides.slice(0, last), outStrides]);
    if (plan.rowLength === 0) return;
    const inRowStride = plan.innerStrides[0]!;
    const spans: RowSpan[] = [];
    forEachRow(plan, [x.offset, 0], ([io, oo]) => {
      spans.push({
        count: plan.rowLength,
        args: (first, n) => [outPtr + 4 * (oo! + first * len), xPtr + 4 * (io! + first * inRowStride), n, len, 4 * inRowStride],
      });
    });
    this.jobs.run(this.rowKernel(), spans, len, rowParallelMinElements.softmax);
  }
}
