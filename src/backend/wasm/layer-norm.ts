// Host side of the float32 layerNorm kernel (layer-norm-kernel.ts): runs layerNormCore and
// layerNormRstd when the last axis has stride 1, looping over the kept dimensions that do not
// merge into one row stride; other layouts and dtypes go to the reference.

import type { KernelInput } from '../backend.js';
import type { WasmHeap } from './memory.js';
import { buildLayerNormModule, LAYER_NORM_ROWS_EXPORT } from './layer-norm-kernel.js';
import { planRows, forEachRow } from './strided-rows.js';

type LayerNormRows = (out: number, inp: number, rows: number, len: number, inRowStride: number, eps: number, rstdOnly: number) => void;

export class WasmLayerNorm {
  private rowsFn: LayerNormRows | undefined;

  constructor(private readonly heap: WasmHeap) {}

  private fn(): LayerNormRows {
    if (this.rowsFn === undefined) {
      const bytes = buildLayerNormModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: this.heap.memory } });
      this.rowsFn = instance.exports[LAYER_NORM_ROWS_EXPORT] as LayerNormRows;
    }
    return this.rowsFn;
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
    const outStrides: number[] = [];
    for (let d = keptShape.length - 1, s = rstdOnly ? 1 : len; d >= 0; d--) { outStrides[d] = s; s *= keptShape[d]!; }
    const plan = planRows(keptShape, [x.strides.slice(0, last), outStrides]);
    if (plan.rowLength === 0) return;
    const run = this.fn();
    forEachRow(plan, [x.offset, 0], ([io, oo]) => {
      run(outPtr + 4 * oo!, xPtr + 4 * io!, plan.rowLength, len, 4 * plan.innerStrides[0]!, eps, rstdOnly ? 1 : 0);
    });
  }
}
