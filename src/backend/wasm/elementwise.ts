// Host side of the generated elementwise kernels: one module (all ops, all row modes), compiled
// on first use, and a lookup from a primitive and its inputs' row strides to the export to call.

import type { WasmHeap } from './memory.js';
import {
  buildElementwiseModule, binaryExportName, unaryExportName, SIMD_BINARY_OPS, SIMD_UNARY_OPS,
  buildCompareModule, compareExportName, SCALAR_COMPARE_OPS, WHERE_EXPORT,
  type SimdBinaryOp, type SimdUnaryOp, type RowMode, type ScalarCompareOp,
} from './elementwise-kernel.js';

/** Runs one row: n elements, `ptrs` = [out, ...inputs] byte addresses, `strides` = the inputs' element strides. */
export type RowFunction = (n: number, ptrs: readonly number[], strides: readonly number[]) => void;

const BINARY = new Set<string>(SIMD_BINARY_OPS);
const COMPARE = new Set<string>(SCALAR_COMPARE_OPS);

/** Runs one row of a byte-strided kernel: `ptrs` = [out, ...inputs], `byteStrides` per input. */
export type ByteStridedRow = (n: number, ptrs: readonly number[], byteStrides: readonly number[]) => void;
const UNARY = new Set<string>(SIMD_UNARY_OPS);

export class WasmElementwise {
  private exports: Record<string, (...args: number[]) => void> | undefined;
  private compareExports: Record<string, (...args: number[]) => void> | undefined;
  private readonly rowFunctions = new Map<string, RowFunction>();

  constructor(private readonly heap: WasmHeap) {}

  /** Whether `prim` has a SIMD kernel here (for float32). */
  handles(prim: string): boolean {
    return BINARY.has(prim) || UNARY.has(prim);
  }

  /** Whether `prim` is a float32 comparison with a wasm kernel (bool output). */
  handlesCompare(prim: string): prim is ScalarCompareOp {
    return COMPARE.has(prim);
  }

  private compareInstance(): Record<string, (...args: number[]) => void> {
    if (this.compareExports === undefined) {
      const bytes = buildCompareModule({
        module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared,
      });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: this.heap.memory } });
      this.compareExports = instance.exports as Record<string, (...args: number[]) => void>;
    }
    return this.compareExports;
  }

  /** a op b over float32 rows into bool bytes. */
  compareRow(op: ScalarCompareOp): ByteStridedRow {
    const f = this.compareInstance()[compareExportName(op)]!;
    return (n, [out, a, b], [sa, sb]) => f(out!, a!, b!, n, sa!, sb!);
  }

  /** cond ? x : y with a bool condition and float32 values. */
  whereRow(): ByteStridedRow {
    const f = this.compareInstance()[WHERE_EXPORT]!;
    return (n, [out, c, x, y], [sc, sx, sy]) => f(out!, c!, x!, y!, n, sc!, sx!, sy!);
  }

  private instance(): Record<string, (...args: number[]) => void> {
    if (this.exports === undefined) {
      const bytes = buildElementwiseModule({
        module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared,
      });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: this.heap.memory } });
      this.exports = instance.exports as Record<string, (...args: number[]) => void>;
    }
    return this.exports;
  }

  /**
   * The row function for `prim` whose inputs walk rows with these element strides: 1 and 0 get
   * SIMD loads and splats, any other stride scalar loads.
   */
  rowFunction(prim: string, inputStrides: readonly number[]): RowFunction {
    const mode = (s: number): RowMode => (s === 1 ? 'contiguous' : s === 0 ? 'broadcast' : 'strided');
    const key = `${prim}:${inputStrides.map(mode).join(',')}`;
    let fn = this.rowFunctions.get(key);
    if (fn === undefined) {
      const ex = this.instance();
      if (BINARY.has(prim)) {
        const f = ex[binaryExportName(prim as SimdBinaryOp, mode(inputStrides[0]!), mode(inputStrides[1]!))]!;
        fn = (n, [out, a, b], [sa, sb]) => f(out!, a!, b!, n, 4 * sa!, 4 * sb!);
      } else if (UNARY.has(prim)) {
        const f = ex[unaryExportName(prim as SimdUnaryOp, inputStrides[0] === 1 ? 'contiguous' : 'strided')]!;
        fn = (n, [out, x], [sx]) => f(out!, x!, n, 4 * sx!);
      } else {
        throw new Error(`WasmElementwise: no SIMD kernel for '${prim}'`);
      }
      this.rowFunctions.set(key, fn);
    }
    return fn;
  }
}
