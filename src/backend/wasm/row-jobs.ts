// Host side of the row-wise kernels' thread-pool split (row-task.ts): a kernel call over many
// independent items (softmax or layerNorm rows, the rows or columns of a reduction) becomes
// several calls over contiguous ranges of items, one per pool unit. Every item is still computed
// by the same code, alone, in the same order, so the result is bit-identical to one thread's.
// Small jobs stay on the calling thread: waking the workers costs more than they would save.

import { ValType } from './encoder.js';
import type { WasmHeap } from './memory.js';
import type { ThreadPool } from './threads.js';
import { PoolModules } from './pool-modules.js';
import { ROW_TASK_DESCRIPTOR_BYTES } from './row-task.js';

/**
 * Elements (items × elements per item) from which a job is split over the pool, per kernel
 * family; below, it runs on the calling thread. Each is where splitting over 2 threads starts to
 * pay, measured with bench/row-kernels.ts (split/single, medians of alternated pairs): softmax rows
 * of 64 0.97 at 4096 elements, 0.84 at 8192; layerNorm rows of 128 1.1 at 8192, 0.72 at 16384
 * (softmax and layerNorm take ~1-2.5 ns per element, so that is ~20 µs of one thread's work, like
 * the elementwise kernels' thresholds). A float32 sum takes only ~0.3 ns per element: at 66560
 * and 131072 elements (25-50 µs) three runs of 101 pairs gave 1.01-1.30, at 524288 0.75-0.82,
 * so reductions split from 262144. Mutable so that a benchmark can set Infinity (never split) and
 * compare in one process, and a test can set 0 (always split) to cover small and odd shapes.
 */
export const rowParallelMinElements = { softmax: 1 << 13, layerNorm: 1 << 14, reduce: 1 << 18 };

/** Units per thread, so that a late-waking or slowed thread delays the job by less. */
const UNITS_PER_THREAD = 2;

/** One kernel of a row module: its index in the module's task, parameter types, and the export to call directly. */
export interface RowKernel {
  readonly index: number;
  readonly params: readonly ValType[];
  readonly direct: (...args: number[]) => void;
}

/** One kernel call over `count` independent items. */
export interface RowSpan {
  readonly count: number;
  /** The arguments of the call over items [first, first + n). */
  readonly args: (first: number, n: number) => readonly number[];
}

export class RowJobs {
  private readonly modules = new PoolModules();
  private params = 0;
  private capacity = 0;

  /** `build` gives the module's bytes (with the row task export); `currentPool` the backend's pool. */
  constructor(
    private readonly heap: WasmHeap,
    private readonly currentPool: () => ThreadPool | undefined,
    private readonly build: () => Uint8Array<ArrayBuffer>,
  ) {}

  /**
   * Runs `kernel` over every span: on the calling thread when the job is smaller than
   * `minElements` (items × `elementsPerItem`), else in ranges of items over the pool. A range's
   * length is a multiple of `align` (except at a span's end), for kernels that run items in groups.
   */
  run(kernel: RowKernel, spans: readonly RowSpan[], elementsPerItem: number, minElements: number, align = 1): void {
    let items = 0;
    for (const s of spans) items += s.count;
    const pool = items >= 2 && items * elementsPerItem >= minElements ? this.currentPool() : undefined;
    if (pool === undefined || pool.threads === 1) {
      for (const s of spans) if (s.count > 0) kernel.direct(...s.args(0, s.count));
      return;
    }
    const target = pool.threads * UNITS_PER_THREAD;
    const chunk = Math.ceil(items / target / align) * align;
    let units = 0;
    for (const s of spans) units += Math.ceil(s.count / chunk);
    if (units === 1) {
      for (const s of spans) if (s.count > 0) kernel.direct(...s.args(0, s.count));
      return;
    }
    const module = this.modules.get(pool, 'rows', this.build);
    this.reserve(units);
    const i32 = this.heap.i32, f64 = this.heap.f64;
    let unit = 0;
    for (const s of spans) {
      for (let first = 0; first < s.count; first += chunk) {
        const base = this.params + unit * ROW_TASK_DESCRIPTOR_BYTES;
        i32[base >>> 2] = kernel.index;
        s.args(first, Math.min(chunk, s.count - first)).forEach((value, a) => {
          const slot = base + 8 + 8 * a;
          if (kernel.params[a] === ValType.f64) f64[slot >>> 3] = value;
          else i32[slot >>> 2] = value;
        });
        unit++;
      }
    }
    pool.run(module, this.params, units);
  }

  /** A parameter block with room for `units` descriptors (8-byte aligned: heap blocks are 64-byte aligned). */
  private reserve(units: number): void {
    if (units <= this.capacity) return;
    if (this.capacity > 0) this.heap.free(this.params);
    this.capacity = Math.max(units, 2 * this.capacity, 16);
    this.params = this.heap.alloc(this.capacity * ROW_TASK_DESCRIPTOR_BYTES);
  }
}
