// Host side of the float32 softmax kernel (softmax-kernel.ts): runs it when the softmax axis is
// the input's last dimension with stride 1 (attention scores, logits), looping over the kept
// dimensions that do not merge into one row stride; other layouts and dtypes go to the reference.

import type { KernelInput } from '../backend.js';
import type { WasmHeap } from './memory.js';
import { buildSoftmaxModule, SOFTMAX_ROWS_EXPORT } from './softmax-kernel.js';
import { planRows, forEachRow } from './strided-rows.js';

type SoftmaxRows = (out: number, inp: number, rows: number, len: number, inRowStride: number) => void;

export class WasmSoftmax {
  private rowsFn: SoftmaxRows | undefined;

  constructor(private readonly heap: WasmHeap) {}

  private fn(): SoftmaxRows {
    if (this.rowsFn === undefined) {
      const bytes = buildSoftmaxModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: this.heap.memory } });
      this.rowsFn = instance.exports[SOFTMAX_ROWS_EXPORT] as SoftmaxRows;
    }
    return this.rowsFn;
  }

  /** Whether x (float32) has a layout the kernel takes for softmax along `axis`. */
  fits(x: KernelInput, axis: number): boolean {
    const last = x.shape.length - 1;
    return x.dtype === 'float32' && axis === last && (x.strides[last] === 1 || x.shape[last] === 1) && x.shape[last]! > 0;
  }

  /** Softmax of x along its last axis into the contiguous float32 output at byte address `outPtr`. */
  run(x: KernelInput, xPtr: number, outPtr: number): void {
    const last = x.shape.length - 1;
    const len = x.shape[last]!;
    const keptShape = x.shape.slice(0, last);
    const outStrides: number[] = [];
    for (let d = keptShape.length - 1, s = len; d >= 0; d--) { outStrides[d] = s; s *= keptShape[d]!; }
    const plan = planRows(keptShape, [x.strides.slice(0, last), outStrides]);
    if (plan.rowLength === 0) return;
    const run = this.fn();
    forEachRow(plan, [x.offset, 0], ([io, oo]) => {
      run(outPtr + 4 * oo!, xPtr + 4 * io!, plan.rowLength, len, 4 * plan.innerStrides[0]!);
    });
  }
}
