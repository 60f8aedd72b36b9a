// Host side of the float32 layerNorm kernels (layer-norm-kernel.ts): runs layerNormCore,
// layerNormRstd and layerNormCoreGrad when the last axis of each input has stride 1, looping over the kept dimensions that do not
// merge into one row stride; other layouts and dtypes go to the reference.

import type { KernelInput } from '../backend.js';
import type { WasmHeap } from './memory.js';
import { buildLayerNormModule, LAYER_NORM_ROWS_EXPORT, LAYER_NORM_GRAD_ROWS_EXPORT } from './layer-norm-kernel.js';
import { planRows, forEachRow } from './strided-rows.js';

type LayerNormRows = (out: number, inp: number, rows: number, len: number, inRowStride: number, eps: number, rstdOnly: number) => void;
type LayerNormGradRows = (out: number, x: number, g: number, rows: number, len: number, xRowStride: number, gRowStride: number, eps: number) => void;

export class WasmLayerNorm {
  private exports: { rows: LayerNormRows; gradRows: LayerNormGradRows } | undefined;

  constructor(private readonly heap: WasmHeap) {}

  private fn(): { rows: LayerNormRows; gradRows: LayerNormGradRows } {
    if (this.exports === undefined) {
      const bytes = buildLayerNormModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: this.heap.memory } });
      this.exports = {
        rows: instance.exports[LAYER_NORM_ROWS_EXPORT] as LayerNormRows,
        gradRows: instance.exports[LAYER_NORM_GRAD_ROWS_EXPORT] as LayerNormGradRows,
      };
    }
    return this.exports;
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
    const run = this.fn().rows;
    forEachRow(plan, [x.offset, 0], ([io, oo]) => {
      run(outPtr + 4 * oo!, xPtr + 4 * io!, plan.rowLength, len, 4 * plan.innerStrides[0]!, eps, rstdOnly ? 1 : 0);
    });
  }

  /** layerNormCoreGrad of x and g (both fitting: see `fits`) into the contiguous float32 output at `outPtr`. */
  runGrad(x: KernelInput, xPtr: number, g: KernelInput, gPtr: number, outPtr: number, eps: number): void {
    const last = x.shape.length - 1;
    const len = x.shape[last]!;
    const keptShape = x.shape.slice(0, last);
    const plan = planRows(keptShape, [x.strides.slice(0, last), g.strides.slice(0, last), contiguousRowStarts(keptShape, len)]);
    if (plan.rowLength === 0) return;
    const run = this.fn().gradRows;
    forEachRow(plan, [x.offset, g.offset, 0], ([xo, go, oo]) => {
      run(outPtr + 4 * oo!, xPtr + 4 * xo!, gPtr + 4 * go!, plan.rowLength, len, 4 * plan.innerStrides[0]!, 4 * plan.innerStrides[1]!, eps);
    });
  }
}

/** Element strides of a contiguous output's row starts over the kept dimensions (rows of `len`). */
function contiguousRowStarts(keptShape: readonly number[], len: number): number[] {
  const strides: number[] = [];
  for (let d = keptShape.length - 1, s = len; d >= 0; d--) { strides[d] = s; s *= keptShape[d]!; }
  return strides;
}
