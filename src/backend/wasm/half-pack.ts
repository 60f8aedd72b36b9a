// Host side of the half-format packing kernels (half-pack-kernel.ts): widen n packed float16/bfloat16
// patterns into float32 words, or narrow (and round) n float32 words into packed patterns, on the
// calling thread or, for large n, split over the backend's thread pool like the elementwise kernels.
// Each element's result depends on that element alone, so a split run equals a single-threaded one
// bit for bit.
import type { WasmHeap } from './memory.js';
import type { ThreadPool } from './threads.js';
import { PoolModules } from './pool-modules.js';
import { buildHalfPackModule, HalfPackParam, HALF_PACK_EXPORTS, HALF_PACK_PARAM_WORDS, type HalfPackExport } from './half-pack-kernel.js';

export type HalfFormat = 'bfloat16' | 'float16';

/**
 * Elements from which a conversion is split over the pool. Waking the workers costs tens of µs, about
 * as much as converting ~50k elements (the elementwise kernels' simple-op threshold, elementwise.ts).
 */
const PARALLEL_MIN_ELEMENTS = 1 << 16;
/** Units per thread, so that a late-waking or slowed thread delays the conversion by less. */
const UNITS_PER_THREAD = 2;

type Convert = (dst: number, src: number, n: number) => void;

export class WasmHalfPack {
  private exports: Record<HalfPackExport, Convert> | undefined;
  private readonly modules = new PoolModules();
  private params: number | undefined;
  /** Conversions run, and those split over the pool (tests check that large ones are). */
  readonly counts = { widen: 0, narrow: 0, parallel: 0 };

  /** `pool` gives the backend's current thread pool (it changes with setThreads). */
  constructor(private readonly heap: WasmHeap, private readonly pool: () => ThreadPool) {}

  /** n patterns of `format` at byte address `src` → n float32 words at `dst` (exact). */
  widen(format: HalfFormat, dst: number, src: number, n: number): void {
    this.counts.widen++;
    this.run(format === 'bfloat16' ? 'widenBf16' : 'widenF16', dst, src, n);
  }

  /** n float32 words at `src` → n patterns of `format` at `dst`, rounded to the format (cpu roundToFormat's bits). */
  narrow(format: HalfFormat, dst: number, src: number, n: number): void {
    this.counts.narrow++;
    this.run(format === 'bfloat16' ? 'narrowBf16' : 'narrowF16', dst, src, n);
  }

  private instance(): Record<HalfPackExport, Convert> {
    if (this.exports === undefined) {
      const bytes = buildHalfPackModule(this.memoryImport());
      this.exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: this.heap.memory } }).exports as unknown as Record<HalfPackExport, Convert>;
    }
    return this.exports;
  }

  private memoryImport() {
    return { module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared };
  }

  private run(name: HalfPackExport, dst: number, src: number, n: number): void {
    if (n <= 0) return;
    const pool = this.pool();
    if (pool.threads === 1 || n < PARALLEL_MIN_ELEMENTS) {
      this.instance()[name](dst, src, n);
      return;
    }
    // Chunks of whole 8-element steps: every element takes the path it takes in one call.
    const chunk = Math.ceil(n / (pool.threads * UNITS_PER_THREAD) / 8) * 8;
    const params = (this.params ??= this.heap.alloc(HALF_PACK_PARAM_WORDS * 4));
    const w = this.heap.i32, b = params >>> 2;
    w[b + HalfPackParam.op] = HALF_PACK_EXPORTS.indexOf(name);
    w[b + HalfPackParam.dst] = dst;
    w[b + HalfPackParam.src] = src;
    w[b + HalfPackParam.n] = n;
    w[b + HalfPackParam.chunk] = chunk;
    const module = this.modules.get(pool, 'half-pack', () => buildHalfPackModule(this.memoryImport()));
    this.counts.parallel++;
    pool.run(module, params, Math.ceil(n / chunk), true);
  }
}
