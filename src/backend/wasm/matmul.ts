// Host side of the generated SGEMM: validates a (batched, strided) matmul, fills the parameter
// block, splits the work into units for the thread pool and runs it. Compiled modules are
// cached per config, so an autotuner can switch configs freely.
//
// Operands are described by (address, row stride, column stride, batch stride) in elements, so
// A^T or B^T is just swapped strides (handled by packing, no copy), and a batch stride of 0
// broadcasts an operand over the batch.

import type { WasmHeap } from './memory.js';
import type { ThreadPool, KernelModule } from './threads.js';
import { buildMatmulModule, MatmulParam, MATMUL_PARAM_WORDS, operandBytes, type MatmulOperandFormat } from './matmul-kernel.js';
import { PANEL_PAD_BYTES, defaultMatmulConfig, matmulConfigKey, matmulScratchLayout, type MatmulConfig } from './matmul-config.js';
import { relaxedSimdSupported } from './simd-features.js';

export interface MatmulOperand {
  /** Byte address of element [0, 0] of batch 0 in the wasm memory (aligned to the element size). */
  readonly ptr: number;
  readonly rowStride: number;
  readonly colStride: number;
  /** Elements between consecutive matrices of the batch; 0 broadcasts. Default 0. */
  readonly batchStride?: number;
  /**
   * Elements between consecutive groups of `batch` matrices when the product has an outer batch
   * (MatmulArgs.outerBatch); 0 broadcasts. Default 0.
   */
  readonly outerStride?: number;
}

export interface MatmulArgs {
  /** C is m×n, A is m×k, B is k×n (after any transposition expressed by strides). */
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly batch?: number;
  /**
   * A second, outer batch dimension: `outerBatch` groups of `batch` matrices, the groups
   * `outerStride` apart in each operand. For batch dimensions that do not walk as one, e.g. the
   * heads of attention's q [B, T, H, D] permuted to [B, H, T, D]: one job for all B·H products
   * instead of B jobs of H (too small to wake the threads). Default 1.
   */
  readonly outerBatch?: number;
  readonly a: MatmulOperand;
  readonly b: MatmulOperand;
  /** The output; must not overlap A or B. */
  readonly c: MatmulOperand;
  /** C = alpha·A·B + beta·C + bias, then ReLU. Defaults: alpha 1, beta 0 (C is not read). */
  readonly alpha?: number;
  readonly beta?: number;
  /** Byte address of n floats added to every row of C, or undefined. */
  readonly bias?: number;
  readonly relu?: boolean;
  /**
   * How A and B hold their elements (default float32): packed float16/bfloat16 operands are widened
   * as they are packed, exactly, so C equals the product of the same values held as float32. C and
   * bias are float32.
   */
  readonly operands?: MatmulOperandFormat;
}

/** A row-major (rows×cols) matrix at `ptr`, or its transpose when `transposed` (then it is read as cols×rows). */
export function rowMajorOperand(ptr: number, rows: number, cols: number, transposed = false, batchStride = rows * cols): MatmulOperand {
  return transposed
    ? { ptr, rowStride: 1, colStride: cols, batchStride }
    : { ptr, rowStride: cols, colStride: 1, batchStride };
}

/**
 * Below this many flops (~50 µs on one core with FMA) a job runs on the calling thread: waking a
 * worker asleep in Atomics.wait took 14–40 µs (min–median round trip) on the 2-core dev VM.
 */
export const PARALLEL_MIN_FLOPS = 1 << 21;

interface CompiledConfig {
  readonly module: KernelModule;
  readonly scratch: number;
  readonly scratchStride: number;
}

export class WasmMatmul {
  private readonly compiled = new Map<string, CompiledConfig>();
  private readonly params: number;

  constructor(
    private readonly heap: WasmHeap,
    private readonly pool: ThreadPool,
    /** Config used when `run` is given none. */
    public config: MatmulConfig = defaultMatmulConfig(),
  ) {
    this.params = heap.alloc(MATMUL_PARAM_WORDS * 4);
  }

  /** Compiles (once) and returns the module and per-thread scratch for a config and operand format. */
  private prepare(requested: MatmulConfig, operands: MatmulOperandFormat): CompiledConfig {
    // FMA is a speed choice, not a semantic one: without relaxed SIMD the same config runs with mul + add.
    const config = requested.fma && !relaxedSimdSupported() ? { ...requested, fma: false } : requested;
    const key = `${matmulConfigKey(config)}|${operands}`;
    let entry = this.compiled.get(key);
    if (entry === undefined) {
      const bytes = buildMatmulModule(config, {
        module: 'env', name: 'memory', minPages: 1, maxPages: this.heap.maxPages, shared: this.heap.shared,
      }, operands);
      const module = this.pool.register(bytes);
      const scratchStride = matmulScratchLayout(config).bytes;
      const scratch = this.heap.alloc(scratchStride * this.pool.threads);
      entry = { module, scratch, scratchStride };
      this.compiled.set(key, entry);
    }
    return entry;
  }

  /** Runs C = alpha·A·B + beta·C (+bias) (ReLU) for every matrix of the batch. */
  run(args: MatmulArgs, config: MatmulConfig = this.config): void {
    const { m, n, k } = args;
    const inner = args.batch ?? 1;
    const outer = args.outerBatch ?? 1;
    const batch = inner * outer;
    this.validate(args, inner, outer);
    if (m === 0 || n === 0 || batch === 0) return;
    const alpha = args.alpha ?? 1;
    const beta = args.beta ?? 0;
    if (k === 0) {
      this.epilogueOnly(args, inner, outer, beta);
      return;
    }
    const { module, scratch, scratchStride } = this.prepare(config, args.operands ?? 'float32');
    const threads = this.pool.threads;
    const flops = 2 * m * n * k * batch;
    const parallel = threads > 1 && flops >= PARALLEL_MIN_FLOPS;
    const shared = parallel && config.shareB !== false
      ? sharedBPlan(m, n, k, batch, threads, config) ?? sharedAPlan(m, n, k, batch, threads, config) : undefined;

    const { mChunk, nChunk } = shared ?? (parallel ? splitWork(m, n, k, batch, threads, config) : { mChunk: m, nChunk: n });
    const mUnits = Math.ceil(m / mChunk);
    const nUnits = Math.ceil(n / nChunk);

    const p = this.params / 4;
    const i32 = this.heap.i32;
    const f32 = this.heap.f32;
    const put = (field: keyof typeof MatmulParam, value: number) => { i32[p + MatmulParam[field]] = value; };
    put('a', args.a.ptr); put('rsA', args.a.rowStride); put('csA', args.a.colStride); put('bsA', args.a.batchStride ?? 0);
    put('b', args.b.ptr); put('rsB', args.b.rowStride); put('csB', args.b.colStride); put('bsB', args.b.batchStride ?? 0);
    put('c', args.c.ptr); put('rsC', args.c.rowStride); put('csC', args.c.colStride); put('bsC', args.c.batchStride ?? 0);
    put('m', m); put('n', n); put('k', k); put('batch', inner);
    put('osA', args.a.outerStride ?? 0); put('osB', args.b.outerStride ?? 0); put('osC', args.c.outerStride ?? 0);
    f32[p + MatmulParam.alpha] = alpha;
    f32[p + MatmulParam.beta] = beta;
    put('bias', args.bias ?? 0); put('relu', args.relu ? 1 : 0);
    put('mChunk', mChunk); put('nChunk', nChunk); put('mUnits', mUnits); put('nUnits', nUnits);
    put('scratch', scratch); put('scratchStride', scratchStride);
    put('mode', 0); put('packedB', 0); put('packedBStride', 0); put('packedA', 0); put('packedAStride', 0); put('packSlices', 1);
    if (shared !== undefined) {
      // Job 1 packs B (or A) into the shared buffer (every thread a slice of each block); job 2 computes.
      const buffer = this.sharedBuffer(shared.bytes);
      put(shared.operand === 'b' ? 'packedB' : 'packedA', buffer);
      put(shared.operand === 'b' ? 'packedBStride' : 'packedAStride', shared.blockStride);
      put('packSlices', shared.slices);
      put('mode', shared.operand === 'b' ? 1 : 2);
      this.pool.run(module, this.params, shared.blocks * shared.slices, true);
      put('mode', 0);
    }
    this.pool.run(module, this.params, batch * mUnits * nUnits, parallel);
  }

  private shared: { ptr: number; bytes: number } | undefined;

  /** The buffer for a shared packed operand, grown (never shrunk) to at least `bytes`. */
  private sharedBuffer(bytes: number): number {
    if (this.shared === undefined || this.shared.bytes < bytes) {
      if (this.shared !== undefined) this.heap.free(this.shared.ptr);
      this.shared = { ptr: this.heap.alloc(bytes), bytes };
    }
    return this.shared.ptr;
  }

  private validate(args: MatmulArgs, batch: number, outer: number): void {
    const { m, n, k } = args;
    for (const [name, v] of [['m', m], ['n', n], ['k', k], ['batch', batch], ['outerBatch', outer]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`matmul: ${name} = ${v} must be a non-negative integer`);
    }
    const limit = this.heap.byteLength;
    const check = (name: string, op: MatmulOperand, rows: number, cols: number) => {
      const bytes = name === 'c' ? 4 : operandBytes(args.operands ?? 'float32');
      const bs = op.batchStride ?? 0;
      const os = op.outerStride ?? 0;
      for (const [s, v] of [['rowStride', op.rowStride], ['colStride', op.colStride], ['batchStride', bs], ['outerStride', os]] as const) {
        if (!Number.isInteger(v) || v < 0) {
          throw new RangeError(`matmul: ${name}.${s} = ${v} must be a non-negative integer (copy a flipped view with contiguous() first)`);
        }
      }
      if (!Number.isInteger(op.ptr) || op.ptr <= 0 || op.ptr % bytes !== 0) {
        throw new RangeError(`matmul: ${name}.ptr = ${op.ptr} is not a ${bytes}-byte aligned heap address`);
      }
      if (rows === 0 || cols === 0 || batch === 0 || outer === 0) return;
      const lastByte = op.ptr + bytes * ((rows - 1) * op.rowStride + (cols - 1) * op.colStride + (batch - 1) * bs + (outer - 1) * os) + bytes;
      if (lastByte > limit) {
        throw new RangeError(`matmul: ${name} (${rows}×${cols}, strides ${op.rowStride}/${op.colStride}/${bs}/${os}, batch ${outer}×${batch}) `
          + `ends at byte ${lastByte}, past the end of the wasm memory (${limit} bytes)`);
      }
    };
    if (batch > 1 && (args.c.batchStride ?? 0) === 0) {
      throw new RangeError(`matmul: c.batchStride is 0 with batch ${batch}: every product would write the same C; give C its own batch stride`);
    }
    if (outer > 1 && (args.c.outerStride ?? 0) === 0) {
      throw new RangeError(`matmul: c.outerStride is 0 with outerBatch ${outer}: every group would write the same C; give C its own outer stride`);
    }
    check('a', args.a, m, k);
    check('b', args.b, k, n);
    check('c', args.c, m, n);
    if (args.bias !== undefined) {
      if (args.bias <= 0 || args.bias % 4 !== 0 || args.bias + 4 * n > limit) {
        throw new RangeError(`matmul: bias = ${args.bias} is not a 4-byte aligned heap address of ${n} floats`);
      }
    }
  }

  /** K = 0: the product is zero, so C = beta·C + bias (ReLU). */
  private epilogueOnly(args: MatmulArgs, batch: number, outer: number, beta: number): void {
    const f32 = this.heap.f32;
    const c = args.c;
    for (let bo = 0; bo < outer; bo++) for (let bi = 0; bi < batch; bi++) {
      for (let i = 0; i < args.m; i++) {
        for (let j = 0; j < args.n; j++) {
          const idx = c.ptr / 4 + bo * (c.outerStride ?? 0) + bi * (c.batchStride ?? 0) + i * c.rowStride + j * c.colStride;
          let v = beta === 0 ? 0 : beta * f32[idx]!;
          if (args.bias !== undefined) v += f32[args.bias / 4 + j]!;
          if (args.relu) v = Math.max(v, 0);
          f32[idx] = v;
        }
      }
    }
  }
}

/** A chunk at least this long (rows for an M split, columns for an N split) may be split further for balance. */
const BALANCE_SPLIT_MIN = 256;

/**
 * How a parallel job is cut into units: whole matrices when the batch alone feeds every thread,
 * else chunks of M (multiples of MR) or of N (multiples of NR), whichever repacks less: every
 * unit packs the B columns it needs once and its A rows once per NC block of its columns.
 *
 * When the chunks stay long (≥ BALANCE_SPLIT_MIN), there are two units per thread instead of
 * one: units are claimed dynamically, so a thread that joins late (a worker waking up) or runs
 * slower (a core shared with another process) leaves less idle time at the end. The price: each
 * extra unit packs the shared operand once more (K·N floats for an M split, ~0.5 cycle each when
 * cached) against its ≥ 2·256·N·K flops (≥ 32·K·N cycles at 16 flop/cycle), so ~2% at most.
 */
export function splitWork(
  m: number, n: number, k: number, batch: number, threads: number, config: MatmulConfig,
): { mChunk: number; nChunk: number } {
  if (batch >= threads) return { mChunk: m, nChunk: n };
  const choose = (chunks: number): { mChunk: number; nChunk: number } | undefined => {
    const packCostSplitM = k * n + (m / chunks) * k * Math.ceil(n / config.nc);
    const packCostSplitN = k * (n / chunks) + m * k * Math.ceil(n / chunks / config.nc);
    const canSplitM = m >= chunks * config.mr;
    const canSplitN = n >= chunks * config.nr;
    if (canSplitM && (!canSplitN || packCostSplitM <= packCostSplitN)) return { mChunk: roundUp(Math.ceil(m / chunks), config.mr), nChunk: n };
    if (canSplitN) return { mChunk: m, nChunk: roundUp(Math.ceil(n / chunks), config.nr) };
    return undefined;
  };
  const fine = choose(Math.ceil((2 * threads) / batch));
  if (fine !== undefined && (fine.mChunk < m ? fine.mChunk : fine.nChunk) >= BALANCE_SPLIT_MIN) return fine;
  return choose(Math.ceil(threads / batch)) ?? { mChunk: m, nChunk: n };
}

/** The most floats of an operand packed once and shared (4 MiB): beyond that it no longer sits in the L3 cache. */
const SHARED_MAX_FLOATS = 1 << 20;
/** Rows (columns) per M (N) chunk at least, when B (A) is shared: fewer reuse each packed panel too little. */
const SHARED_B_MIN_ROWS = 32;
const SHARED_A_MIN_COLUMNS = 16;
/**
 * A is shared only while it fits in half of a 512 KiB L2: each N chunk streams the whole packed A
 * again, and from L3 that lost 13% on the CNN's 64×288×12544 weight gradient (A = 3.2 MB) in
 * `bench/matmul.ts --training --config='{"shareB":false}' --versus='{"shareB":true}'`, twice.
 */
const SHARED_A_MAX_FLOATS = 1 << 16;
/** Chunks per thread when an operand is shared: claimed dynamically, so a slower thread takes fewer. */
const SHARED_CHUNKS_PER_THREAD = 4;

export interface SharedPackingPlan {
  /** Which operand the pack job packs once: B for M chunks, A for N chunks. */
  operand: 'a' | 'b';
  mChunk: number;
  nChunk: number;
  /** Blocks of the packed operand, each cut into `slices` pack units. */
  blocks: number;
  slices: number;
  blockStride: number;
  bytes: number;
}

/**
 * When B is packed once for all units (config.shareB, the default; it also enables sharedAPlan): a single product (batch 1) with enough
 * rows for two M chunks per thread and a B small enough to stay in L3. Then M is cut into up to
 * 4 chunks per thread with no packing cost per chunk (each packs only its own A rows), where the
 * one-job split (splitWork) makes 2 chunks per thread that each pack all of B again; more,
 * smaller chunks leave less idle time at the end when a thread joins late or runs slower (a
 * vCPU shared with another tenant). The layout: ceil(N/NC)·ceil(K/kStep) blocks in the
 * kernel's loop order, each ceil(min(N, NC)/NR) panels of kStep·NR floats plus the pad.
 */
export function sharedBPlan(m: number, n: number, k: number, batch: number, threads: number, config: MatmulConfig): SharedPackingPlan | undefined {
  if (batch !== 1 || m < 2 * threads * SHARED_B_MIN_ROWS || k * n > SHARED_MAX_FLOATS) return undefined;
  const mChunk = roundUp(Math.max(SHARED_B_MIN_ROWS, Math.ceil(m / (SHARED_CHUNKS_PER_THREAD * threads))), config.mr);
  return { operand: 'b', mChunk, nChunk: n, slices: threads, ...packedLayout(k, config.kc, n, config.nc, config.nr) };
}

/**
 * The mirror image for short, wide products (too few rows for sharedBPlan, e.g. a weight
 * gradient Gᵀ·X with 64 output channels): A is packed once, in the kernel's (pc, ic) block
 * order, and N is cut into up to 4 chunks per thread, each packing only its own B columns.
 */
export function sharedAPlan(m: number, n: number, k: number, batch: number, threads: number, config: MatmulConfig): SharedPackingPlan | undefined {
  if (batch !== 1 || n < 2 * threads * SHARED_A_MIN_COLUMNS || m * k > SHARED_A_MAX_FLOATS) return undefined;
  const nChunk = roundUp(Math.max(SHARED_A_MIN_COLUMNS, Math.ceil(n / (SHARED_CHUNKS_PER_THREAD * threads))), config.nr);
  return { operand: 'a', mChunk: m, nChunk, slices: threads, ...packedLayout(k, config.kc, m, config.mc, config.mr) };
}

/**
 * The layout of an operand packed whole, as the kernel's pack job writes it: K in equal blocks of
 * at most KC (kStep, as the kernel computes it) times `extent` (N for B, M for A) in blocks of
 * `block` (NC or MC) lines, each block ceil(min(extent, block)/width) panels of kStep·width floats
 * plus the pad, 64-byte aligned.
 */
function packedLayout(k: number, kc: number, extent: number, block: number, width: number): { blocks: number; blockStride: number; bytes: number } {
  const kBlocks = Math.ceil(k / kc);
  const kStep = Math.ceil(k / kBlocks);
  const blocks = Math.ceil(extent / block) * kBlocks;
  const blockStride = Math.ceil((Math.ceil(Math.min(extent, block) / width) * (kStep * width * 4 + PANEL_PAD_BYTES)) / 64) * 64;
  return { blocks, blockStride, bytes: blocks * blockStride };
}

function roundUp(x: number, multiple: number): number {
  return Math.ceil(x / multiple) * multiple;
}
