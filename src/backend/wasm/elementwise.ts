// Host side of the generated elementwise kernels: one module (elementwise-kernel.ts), compiled on
// first use, and the lookup from a primitive and its inputs' inner strides to the export to call.

import type { WasmHeap } from './memory.js';
import {
  buildElementwiseModule, binaryExportName, unaryExportName, compareExportName, rowMode, WHERE_EXPORT,
  SIMD_BINARY_OPS, SIMD_UNARY_OPS, SCALAR_COMPARE_OPS,
  type SimdBinaryOp, type SimdUnaryOp, type ScalarCompareOp,
} from './elementwise-kernel.js';
import { TRANSCENDENTAL_OPS, type TranscendentalOp } from './transcendental-kernel.js';

/**
 * Runs a block of `rows` rows of `n` elements: `ptrs` = [out, ...inputs] byte addresses,
 * `strides` = the inputs' inner byte strides, `rowStrides` = their byte strides between rows.
 */
export type BlockFunction = (n: number, rows: number, ptrs: readonly number[], strides: readonly number[], rowStrides: readonly number[]) => void;

const BINARY = new Set<string>(SIMD_BINARY_OPS);
const UNARY = new Set<string>([...SIMD_UNARY_OPS, ...TRANSCENDENTAL_OPS]);
const COMPARE = new Set<string>(SCALAR_COMPARE_OPS);

/** The dtypes a primitive's wasm kernel takes and gives. */
export interface ElementwiseSignature {
  readonly inputs: readonly ('float32' | 'bool')[];
  readonly output: 'float32' | 'bool';
}

export class WasmElementwise {
  private exports: Record<string, (...args: number[]) => void> | undefined;
  private readonly blocks = new Map<string, BlockFunction>();

  constructor(private readonly heap: WasmHeap) {}

  /** The dtypes `prim`'s kernel works on, or undefined when there is no wasm kernel for it. */
  signature(prim: string): ElementwiseSignature | undefined {
    if (BINARY.has(prim)) return { inputs: ['float32', 'float32'], output: 'float32' };
    if (UNARY.has(prim)) return { inputs: ['float32'], output: 'float32' };
    if (COMPARE.has(prim)) return { inputs: ['float32', 'float32'], output: 'bool' };
    if (prim === 'where') return { inputs: ['bool', 'float32', 'float32'], output: 'float32' };
    return undefined;
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

  /** The block function for `prim` whose inputs walk rows with these element strides. */
  blockFunction(prim: string, inputStrides: readonly number[]): BlockFunction {
    const modes = inputStrides.map(rowMode);
    const key = `${prim}:${modes.join(',')}`;
    let fn = this.blocks.get(key);
    if (fn === undefined) {
      let name: string;
      if (BINARY.has(prim)) name = binaryExportName(prim as SimdBinaryOp, modes[0]!, modes[1]!);
      else if (UNARY.has(prim)) name = unaryExportName(prim as SimdUnaryOp | TranscendentalOp, modes[0]!);
      else if (COMPARE.has(prim)) name = compareExportName(prim as ScalarCompareOp);
      else if (prim === 'where') name = WHERE_EXPORT;
      else throw new Error(`WasmElementwise: no kernel for '${prim}'`);
      const f = this.instance()[name]!;
      fn = (n, rows, ptrs, strides, rowStrides) => f(...ptrs, n, rows, ...strides, ...rowStrides);
      this.blocks.set(key, fn);
    }
    return fn;
  }
}
