// Host side of the transposing copy (transpose-kernel.ts): recognizes a strided copy of 4-byte
// elements whose collapsed layout is [outer?, P, Q] with dst's rows and src's columns contiguous
// (the copy behind `contiguous` of a transposed view: NCHW ↔ NHWC, a convolution's GEMM result
// into NCHW and its gradient back), and runs it in 4x4 SIMD blocks over the thread pool.

import { planRows } from './strided-rows.js';
import type { WasmHeap } from './memory.js';
import type { ThreadPool } from './threads.js';
import { PoolModules } from './pool-modules.js';
import { buildTransposeModule, TransposeParam, TRANSPOSE_PARAM_WORDS } from './transpose-kernel.js';

/** Both transposed sides at least this long, else the element-by-element copy is as good. */
const MIN_SIDE = 4;
/**
 * Below this many elements a copy runs on the calling thread. Waking the workers costs tens of µs
 * and more on a loaded machine, as much as a whole copy of a few MB: [64, 64, 196] → [64, 196, 64]
 * takes ~0.3 ms on one thread (0.7 element by element), and split over two threads measured
 * slower at the median under load (alternating runs in one process).
 */
const PARALLEL_MIN_ELEMENTS = 1 << 21;
/** Units per thread, so that a late-waking or slowed thread delays the copy by less. */
const UNITS_PER_THREAD = 4;

/** The copy as the kernel takes it, in elements: dst[o, i, j] = src[o, j, i]. */
export interface TransposePlan {
  outer: number;
  p: number;
  q: number;
  dP: number;
  sQ: number;
  dOuter: number;
  sOuter: number;
}

/**
 * The transpose plan of a copy over `shape` with these element strides, or undefined when its
 * collapsed layout is not [outer?, P, Q] with dst stride 1 along Q and src stride 1 along P.
 */
export function transposePlan(shape: readonly number[], dstStrides: readonly number[], srcStrides: readonly number[]): TransposePlan | undefined {
  const plan = planRows(shape, [dstStrides, srcStrides]);
  const outerRank = plan.outerShape.length;
  if (outerRank < 1 || outerRank > 2) return undefined;
  const [dIn, sIn] = plan.innerStrides as [number, number];
  const p = plan.outerShape[outerRank - 1]!, q = plan.rowLength;
  const dP = plan.outerStrides[0]![outerRank - 1]!, sP = plan.outerStrides[1]![outerRank - 1]!;
  if (dIn !== 1 || sP !== 1 || p < MIN_SIDE || q < MIN_SIDE) return undefined;
  const outer = outerRank === 2 ? plan.outerShape[0]! : 1;
  const dOuter = outerRank === 2 ? plan.outerStrides[0]![0]! : 0, sOuter = outerRank === 2 ? plan.outerStrides[1]![0]! : 0;
  return { outer, p, q, dP, sQ: sIn, dOuter, sOuter };
}

export class WasmTranspose {
  private readonly modules = new PoolModules();
  private params: number | undefined;

  constructor(private readonly heap: WasmHeap, private readonly currentPool: () => ThreadPool) {}

  /** Runs `plan` from the byte address srcPtr to dstPtr (each at its copy's first element). */
  run(plan: TransposePlan, dstPtr: number, srcPtr: number): void {
    const pool = this.currentPool();
    const elements = plan.outer * plan.p * plan.q;
    const parallel = pool.threads > 1 && elements >= PARALLEL_MIN_ELEMENTS;
    // Units: every outer row, cut into chunks of rows (multiples of 4) until there are enough.
    const target = parallel ? pool.threads * UNITS_PER_THREAD : 1;
    const perOuter = Math.min(Math.ceil(target / plan.outer), Math.ceil(plan.p / 4));
    const iChunk = 4 * Math.ceil(plan.p / 4 / perOuter);
    const chunks = Math.ceil(plan.p / iChunk);
    const params = (this.params ??= this.heap.alloc(TRANSPOSE_PARAM_WORDS * 4));
    const w = this.heap.i32, b = params >>> 2;
    w[b + TransposeParam.dst] = dstPtr;
    w[b + TransposeParam.src] = srcPtr;
    w[b + TransposeParam.p] = plan.p;
    w[b + TransposeParam.q] = plan.q;
    w[b + TransposeParam.dP] = 4 * plan.dP;
    w[b + TransposeParam.sQ] = 4 * plan.sQ;
    w[b + TransposeParam.dOuter] = 4 * plan.dOuter;
    w[b + TransposeParam.sOuter] = 4 * plan.sOuter;
    w[b + TransposeParam.chunks] = chunks;
    w[b + TransposeParam.iChunk] = iChunk;
    const module = this.modules.get(pool, 'transpose', () =>
      buildTransposeModule({ module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared }));
    pool.run(module, params, plan.outer * chunks, parallel);
  }
}
