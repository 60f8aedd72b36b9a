// Host side of the generated elementwise kernels: one module (elementwise-kernel.ts), compiled on
// first use, and the lookup from a primitive and its inputs' inner strides to the export to call.

import type { WasmHeap } from './memory.js';
import {
  buildElementwiseModule, elementwiseKernelNames, TASK_DESCRIPTOR_BYTES, binaryExportName, unaryExportName, compareExportName, rowMode, WHERE_EXPORT,
  SIMD_BINARY_OPS, SIMD_COMPOSED_BINARY_OPS, SIMD_UNARY_OPS, SCALAR_COMPARE_OPS,
  type SimdBinaryOp, type SimdComposedBinaryOp, type SimdUnaryOp, type ScalarCompareOp,
} from './elementwise-kernel.js';
import { TRANSCENDENTAL_OPS, type TranscendentalOp } from './transcendental-kernel.js';
import type { KernelModule, ThreadPool } from './threads.js';

/**
 * Runs a block of `rows` rows of `n` elements: `ptrs` = [out, ...inputs] byte addresses,
 * `strides` = the inputs' inner byte strides, `rowStrides` = their byte strides between rows.
 */
export type BlockFunction = (n: number, rows: number, ptrs: readonly number[], strides: readonly number[], rowStrides: readonly number[]) => void;

const BINARY = new Set<string>([...SIMD_BINARY_OPS, ...SIMD_COMPOSED_BINARY_OPS]);
const UNARY = new Set<string>([...SIMD_UNARY_OPS, ...TRANSCENDENTAL_OPS]);
const COMPARE = new Set<string>(SCALAR_COMPARE_OPS);
const TRANSCENDENTAL = new Set<string>(TRANSCENDENTAL_OPS);

/** The dtypes a primitive's wasm kernel takes and gives. */
export interface ElementwiseSignature {
  readonly inputs: readonly ('float32' | 'bool')[];
  readonly output: 'float32' | 'bool';
}

/**
 * Elements (rows × n) from which a block is split over the thread pool: waking the workers costs
 * tens of µs, as much as ~50k elements of a simple op but only ~5k of a transcendental.
 */
const PARALLEL_MIN_ELEMENTS = { simple: 1 << 16, transcendental: 1 << 13 } as const;
/** Units per thread, so that a late-waking or slowed thread delays the block by less. */
const UNITS_PER_THREAD = 2;

export class WasmElementwise {
  private exports: Record<string, (...args: number[]) => void> | undefined;
  private readonly blocks = new Map<string, BlockFunction>();
  private kernelIds: Map<string, number> | undefined;
  /** The module registered with the current pool, and the heap block holding the units' descriptors. */
  private parallel: { pool: ThreadPool; module: KernelModule; params: number; maxUnits: number } | undefined;

  /** `pool` gives the backend's current thread pool (it changes with setThreads). */
  constructor(private readonly heap: WasmHeap, private readonly pool: () => ThreadPool | undefined = () => undefined) {}

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
      if (BINARY.has(prim)) name = binaryExportName(prim as SimdBinaryOp | SimdComposedBinaryOp, modes[0]!, modes[1]!);
      else if (UNARY.has(prim)) name = unaryExportName(prim as SimdUnaryOp | TranscendentalOp, modes[0]!);
      else if (COMPARE.has(prim)) name = compareExportName(prim as ScalarCompareOp);
      else if (prim === 'where') name = WHERE_EXPORT;
      else throw new Error(`WasmElementwise: no kernel for '${prim}'`);
      const f = this.instance()[name]!;
      const id = this.kernelId(name);
      const outBytes = COMPARE.has(prim) ? 1 : 4;
      const minElements = TRANSCENDENTAL.has(prim) ? PARALLEL_MIN_ELEMENTS.transcendental : PARALLEL_MIN_ELEMENTS.simple;
      fn = (n, rows, ptrs, strides, rowStrides) => {
        const pool = n * rows >= minElements ? this.pool() : undefined;
        if (pool === undefined || pool.threads === 1) f(...ptrs, n, rows, ...strides, ...rowStrides);
        else this.runParallel(pool, id, outBytes, n, rows, ptrs, strides, rowStrides);
      };
      this.blocks.set(key, fn);
    }
    return fn;
  }

  private kernelId(name: string): number {
    this.kernelIds ??= new Map(elementwiseKernelNames().map((n, i) => [n, i]));
    return this.kernelIds.get(name)!;
  }

  /**
   * One block split over the pool: by rows when there are enough, else each row in pieces whose
   * length is a multiple of 4 (so every element takes the same vector or scalar path as it would
   * in one call; results are identical to a single-threaded run).
   */
  private runParallel(
    pool: ThreadPool, id: number, outBytes: number, n: number, rows: number,
    ptrs: readonly number[], strides: readonly number[], rowStrides: readonly number[],
  ): void {
    const target = pool.threads * UNITS_PER_THREAD;
    const p = this.parallelState(pool, target);
    const words = this.heap.i32;
    let units = 0;
    const put = (out: number, ins: readonly number[], len: number, rowCount: number) => {
      let w = (p.params + units * TASK_DESCRIPTOR_BYTES) >>> 2;
      words[w++] = id;
      words[w++] = out;
      for (const a of ins) words[w++] = a;
      words[w++] = len;
      words[w++] = rowCount;
      for (const st of strides) words[w++] = st;
      for (const rs of rowStrides) words[w++] = rs;
      units++;
    };
    const inPtrs = ptrs.slice(1);
    if (rows >= target) {
      const chunk = Math.ceil(rows / target);
      for (let r0 = 0; r0 < rows; r0 += chunk) {
        put(ptrs[0]! + r0 * n * outBytes, inPtrs.map((q, j) => q + r0 * rowStrides[j]!), n, Math.min(chunk, rows - r0));
      }
    } else {
      const pieces = Math.ceil(target / rows);
      const chunk = Math.ceil(n / pieces / 4) * 4;
      for (let r = 0; r < rows; r++) {
        for (let i0 = 0; i0 < n; i0 += chunk) {
          put(ptrs[0]! + (r * n + i0) * outBytes, inPtrs.map((q, j) => q + r * rowStrides[j]! + i0 * strides[j]!), Math.min(chunk, n - i0), 1);
        }
      }
    }
    pool.run(p.module, p.params, units);
  }

  private parallelState(pool: ThreadPool, target: number): { module: KernelModule; params: number } {
    // At most target + rows - 1 < 2·target units (pieces of each of < target rows).
    const maxUnits = 2 * target;
    if (this.parallel === undefined || this.parallel.pool !== pool || this.parallel.maxUnits < maxUnits) {
      if (this.parallel !== undefined) this.heap.free(this.parallel.params);
      const bytes = buildElementwiseModule({
        module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared,
      });
      this.parallel = { pool, module: pool.register(bytes), params: this.heap.alloc(maxUnits * TASK_DESCRIPTOR_BYTES), maxUnits };
    }
    return this.parallel;
  }
}
