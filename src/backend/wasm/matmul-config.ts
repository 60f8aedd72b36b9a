// The tunable parameters of the generated SGEMM. They are data, not constants, so that the
// autotuner (and bench/matmul.ts) can search over them; each distinct config compiles to its
// own module, cached by `matmulConfigKey`.

import { relaxedSimdSupported } from './simd-features.js';

export interface MatmulConfig {
  /** Rows of C per micro-tile (register tile height). */
  readonly mr: number;
  /** Columns of C per micro-tile; a multiple of 4 (one f32x4 per 4 columns). */
  readonly nr: number;
  /** Depth of one packed block: a KC×NR panel of B should stay in L1. */
  readonly kc: number;
  /** Rows of A packed at once (MC×KC in L2); a multiple of mr. */
  readonly mc: number;
  /** Columns of B packed at once (KC×NC in L2/L3); a multiple of nr. */
  readonly nc: number;
  /** How many k steps the micro-kernel's inner loop does per iteration. */
  readonly unroll: number;
  /**
   * Accumulate with f32x4.relaxed_madd (one FMA instruction where the CPU has one) instead of
   * f32x4.mul + f32x4.add. Needs relaxed SIMD (simd-features.ts); WasmMatmul uses mul + add
   * where the runtime lacks it. Default false.
   */
  readonly fma?: boolean;
  /**
   * On several threads, pack B once for the whole product in a first parallel job and cut the
   * product into many M chunks that all read it (see WasmMatmul.run), instead of letting each
   * unit pack the B it needs. Default true; false gives the one-job split of `splitWork`.
   * Measured on 2 threads with the two alternating run by run (`bench/matmul.ts --training
   * --sizes=1024 --config='{"shareB":false}' --versus='{"shareB":true}'`, and
   * `bench/step-versus.ts --versus='{"shareB":true}'`, both under bench/with-priority.sh while
   * other sessions ran tests): GPT QKV 1024×384×128 1.24×, MLP fc1 weight gradient 1.20×, the
   * other training products 0.98-1.03×, squares 512/1024 1.03×/1.01×; whole steps 0.98-1.03×,
   * GPT eager and jit 1.03×.
   */
  readonly shareB?: boolean;
}

/**
 * 4×8 with 8 f32x4 accumulators: V8 on x64 allocates xmm0–15 only, and 16-accumulator tiles
 * spill (research/spikes.md §B.1). No unrolling: TurboFan hoists the loads of all unrolled steps
 * to the top of the loop body, runs out of xmm registers and spills (seen in --print-wasm-code;
 * unroll 4 measured ~40% slower than 1).
 *
 * Measured 2026-11-26 on the dev VM (AMD EPYC Zen 3, 2 cores, AVX2 + FMA3, ~2.95 GHz; 16 flop/cycle
 * = ~47 GFLOP/s per core with either 2 FMA or 2 FMUL + 2 FADD pipes), the micro-kernel alone on
 * L1-resident panels, steady state after tier-up, best of 30 short runs (the same measurement:
 * `node --import tsx bench/matmul.ts --micro`; on a busy machine all figures drop ~20%):
 *   4×8 mul+add 29.9 GFLOP/s (6.3 cycles per k step: the 8 adds wait on the 8 multiplies)
 *   4×8 FMA     45.6 (4.1 cycles: 8 vfmadd231ps on 2 pipes, ~97% of peak)
 *   2×16 FMA    44.0;  4×8 FMA unroll 2: 22;  6×8, 5×8, 3×16 FMA: 18–22 (not investigated further;
 *   2×16 would lose packA's 4×4-transpose path, which needs MR % 4 = 0)
 * Two threads running the FMA micro-kernel at once each keep ~45 (the two vCPUs are not SMT
 * siblings), so 2-thread GEMM can in principle approach 2×.
 * The "same bytes, different speed" seen between module instances was not code placement
 * (V8 shares one compiled module between instances of identical bytes) but dynamic tiering:
 * a fresh module runs Liftoff code (~5 GFLOP/s) for its first few ms, and on a loaded machine
 * the background TurboFan job can take much longer; after tier-up, instances measure equal
 * (45.6/45.2/45.6). So no instance-picking autotuner: warm-up is what a benchmark needs.
 *
 * KC=512, MC=64: a 16 KB B micro-panel plus an 8 KB A micro-panel in a 32 KB L1, MC×KC = 128 KB
 * of packed A in L2. The K loop splits K into equal blocks of at most KC (matmul-kernel.ts), so
 * the im2col K = 288 of a 3×3×32 convolution is one block (C written once, A read in whole rows),
 * K = 784 runs as two blocks of 392 and K = 1024 as two of 512. Deeper blocks mean fewer passes
 * over C per micro-tile (the C update costs ~30-50 cycles against ~4 cycles per k step).
 * Measured 2026-11-26 against the previous KC=320, MC=128 with the two alternating run by run,
 * so that both see the same machine phase: `node --import tsx bench/matmul.ts --sizes=512,1024,2048
 * --config='{"kc":320,"mc":128}' --versus='{"kc":512,"mc":64}'` (and the same with --training;
 * bench/results/matmul-kc512-versus-kc320*.json). Median paired speed-ups: squares 1.006-1.039
 * on 1 thread and 1.008-1.098 on 2; the training products 0.985-1.065, median ~1.003. In a fast
 * phase, square 1024 on 1 thread measured 45.7-46.2 GFLOP/s against 44.2.
 */
export const DEFAULT_MATMUL_CONFIG: MatmulConfig = Object.freeze({ mr: 4, nr: 8, kc: 512, mc: 64, nc: 1024, unroll: 1 });

/**
 * The default with relaxed-SIMD FMA. relaxed_madd may be fused or not depending on the hardware
 * (the relaxed-SIMD proposal allows either), so results can differ from mul + add in the last
 * bits; tests compare both against float64 references with the same error bound.
 */
export const FMA_MATMUL_CONFIG: MatmulConfig = Object.freeze({ ...DEFAULT_MATMUL_CONFIG, fma: true });

/** The portable default, with FMA where this runtime has relaxed SIMD (see simd-features.ts). */
export function defaultMatmulConfig(): MatmulConfig {
  return relaxedSimdSupported() ? FMA_MATMUL_CONFIG : DEFAULT_MATMUL_CONFIG;
}

/** Accumulators beyond this many v128 registers spill on x64 V8 (16 xmm, minus operands). */
export const MAX_ACCUMULATORS = 12;

export function matmulConfigKey(c: MatmulConfig): string {
  return `mr${c.mr}_nr${c.nr}_kc${c.kc}_mc${c.mc}_nc${c.nc}_u${c.unroll}${c.fma ? '_fma' : ''}${c.shareB === false ? '_ownB' : ''}`;
}

/** Throws with the offending values when a config cannot be generated. */
export function validateMatmulConfig(c: MatmulConfig): void {
  const problems: string[] = [];
  const positiveInt = (name: 'mr' | 'nr' | 'kc' | 'mc' | 'nc' | 'unroll') => {
    if (!Number.isInteger(c[name]) || c[name] < 1) problems.push(`${name} = ${c[name]} must be a positive integer`);
  };
  (['mr', 'nr', 'kc', 'mc', 'nc', 'unroll'] as const).forEach(positiveInt);
  if (c.fma !== undefined && typeof c.fma !== 'boolean') problems.push(`fma = ${String(c.fma)} must be true or false`);
  if (c.shareB !== undefined && typeof c.shareB !== 'boolean') problems.push(`shareB = ${String(c.shareB)} must be true or false`);
  if (c.nr % 4 !== 0) problems.push(`nr = ${c.nr} must be a multiple of 4 (f32x4 lanes)`);
  if ((c.mr * c.nr) / 4 > MAX_ACCUMULATORS) {
    problems.push(`mr×nr/4 = ${(c.mr * c.nr) / 4} accumulators exceed ${MAX_ACCUMULATORS} (they would spill)`);
  }
  if (c.mc % c.mr !== 0) problems.push(`mc = ${c.mc} must be a multiple of mr = ${c.mr}`);
  if (c.nc % c.nr !== 0) problems.push(`nc = ${c.nc} must be a multiple of nr = ${c.nr}`);
  if (c.unroll > 16) problems.push(`unroll = ${c.unroll} must be at most 16`);
  if (c.kc * Math.max(c.mc, c.nc) * 4 > 64 * 2 ** 20) problems.push(`kc×max(mc, nc) = ${c.kc * Math.max(c.mc, c.nc)} floats is too large a pack buffer`);
  if (problems.length > 0) throw new RangeError(`invalid matmul config ${JSON.stringify(c)}: ${problems.join('; ')}`);
}

const align64 = (bytes: number) => Math.ceil(bytes / 64) * 64;

/**
 * Bytes between the end of one packed panel and the start of the next. Without it, panels are
 * kc·MR·4 = 4 KiB (or 8 KiB for B) apart, so the packing loops that fill several panels per k
 * (row-major B, A = Gᵀ) store into a single L1 set and evict their own lines: one line of
 * padding staggers consecutive panels across sets. Measured with tmp-style microbenchmarks of
 * the exported pack functions: packA of a transposed A 2.0 → 0.65 cycles per element (2.4 → 0.9
 * streaming a 2 MB matrix), packB of a row-major B 0.97 → 0.4.
 */
export const PANEL_PAD_BYTES = 64;

/** Byte layout of one thread's private scratch: packed A block, packed B block, one C tile. */
export function matmulScratchLayout(c: MatmulConfig): { packA: number; packB: number; tile: number; bytes: number } {
  const packABytes = align64((c.mc / c.mr) * (c.kc * c.mr * 4 + PANEL_PAD_BYTES));
  const packBBytes = align64((c.nc / c.nr) * (c.kc * c.nr * 4 + PANEL_PAD_BYTES));
  const tileBytes = align64(c.mr * c.nr * 4);
  return { packA: 0, packB: packABytes, tile: packABytes + packBBytes, bytes: packABytes + packBBytes + tileBytes };
}
