// Generates the SGEMM module for one MatmulConfig (GotoBLAS structure, research/spikes.md §B):
//
//   for jc in N step NC:                  B block KC×NC packed into NR-column panels
//     for pc in K step ≤ KC:              K in equal blocks of at most KC
//       packB
//       for ic in M step MC:              A block MC×KC packed into MR-row panels
//         packA
//         for jr in NC step NR:           B micro-panel (KC×NR) stays in L1
//           for ir in MC step MR:
//             micro-kernel: MR×NR tile of C in MR·NR/4 f32x4 accumulators
//
// Packing reads A and B through (row, column) strides, so transposed operands need no copy:
// 4×4 SIMD transposes where a row of A (column of B) is contiguous along k, long sequential
// runs otherwise. It pads edge panels with zeros so that the micro-kernel always computes a full
// tile; only the store of an edge tile (or a C with a column stride ≠ 1) goes through a
// scalar path. The epilogue C = alpha·AB + beta·C (+ bias per column) (ReLU) is applied when a
// tile is stored: beta on the first K block, bias and ReLU on the last.
//
// A and B may also be packed float16/bfloat16 storages (2 bytes per element, packed-half.ts): the
// packing widens them into the float32 panels as it reads them (exactly), so the micro-kernel, the
// sums and C are those of the same values held as float32 words, and no widened copy of an operand
// is made. C is float32.
//
// Exports `task(unit, params, thread)`, and its parts (gemm, micro, packA, packB) for tests
// and tuning. The multithreading protocol (threads.ts) is "call
// task for every unit index"; the unit is decoded here into (batch, M chunk, N chunk).

import { ModuleBuilder, FunctionBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport } from './encoder.js';
import { type MatmulConfig, PANEL_PAD_BYTES, matmulConfigKey, matmulScratchLayout, validateMatmulConfig } from './matmul-config.js';
import { emitWidenLanes } from './half-pack-kernel.js';

const { i32, f32, v128 } = ValType;

/** Word offsets (×4 bytes) of the fields of a matmul parameter block in the wasm memory. */
export const MatmulParam = {
  a: 0, rsA: 1, csA: 2, bsA: 3,
  b: 4, rsB: 5, csB: 6, bsB: 7,
  c: 8, rsC: 9, csC: 10, bsC: 11,
  m: 12, n: 13, k: 14, batch: 15,
  alpha: 16, beta: 17, // f32
  bias: 18, relu: 19,
  mChunk: 20, nChunk: 21, mUnits: 22, nUnits: 23,
  scratch: 24, scratchStride: 25,
  // A B packed once for the whole product by a pack job (see emitTask), shared by every unit of
  // the compute job that follows; 0 = each unit packs the B it needs into its own scratch.
  packedB: 26, packedBStride: 27,
  // 0: compute units; 1: pack units (packSlices column slices of each KC×NC block of B).
  mode: 28, packSlices: 29,
  // Strides between the groups of an outer batch: units decode to (outer, batch, M, N chunk).
  osA: 30, osB: 31, osC: 32,
  // Likewise an A packed once for the whole product (every unit has all of M), for N splits.
  packedA: 33, packedAStride: 34,
} as const;
export const MATMUL_PARAM_WORDS = 40;

/** How A and B hold their elements: float32, or packed 2-byte float16/bfloat16 patterns. */
export type MatmulOperandFormat = 'float32' | 'bfloat16' | 'float16';

/** Bytes per element of an operand format. */
export function operandBytes(format: MatmulOperandFormat): 2 | 4 {
  return format === 'float32' ? 4 : 2;
}

/**
 * Loads of A's and B's elements as float32, for one function: float32 words as they are, packed
 * half-format patterns widened (four at a time from 8 bytes, or one from 2).
 */
class OperandLoads {
  readonly bytes: 2 | 4;
  /** log2(bytes), to turn element strides into byte strides. */
  readonly shift: 1 | 2;
  private readonly h: number;
  private readonly em: number;

  constructor(private readonly f: FunctionBuilder, private readonly format: MatmulOperandFormat, private readonly halfToFloat: number) {
    this.bytes = operandBytes(format);
    this.shift = this.bytes === 4 ? 2 : 1;
    this.h = format === 'float32' ? -1 : f.local(ValType.v128);
    this.em = format === 'float16' ? f.local(ValType.v128) : -1;
  }

  /** Address on the stack → four consecutive elements at +offset elements' bytes, as an f32x4. */
  vec4(offsetElements: number, alignLog2: number): void {
    if (this.format === 'float32') {
      this.f.simdMem(SimdMemOp.v128Load, 4 * offsetElements, alignLog2);
      return;
    }
    this.f.simdMem(SimdMemOp.v128Load64Zero, 2 * offsetElements, 0).simd(SimdOp.i32x4ExtendLowI16x8U).localSet(this.h);
    emitWidenLanes(this.f, this.format, this.h, this.em);
  }

  /** Address on the stack → the element there, as an f32. */
  scalar(): void {
    if (this.format === 'float32') this.f.mem(MemOp.f32Load);
    else if (this.format === 'bfloat16') this.f.mem(MemOp.i32Load16U).i32Const(16).op(Op.i32Shl).op(Op.f32ReinterpretI32);
    else this.f.mem(MemOp.i32Load16U).call(this.halfToFloat);
  }
}

/** halfToFloat(pattern) → f32: one float16 pattern widened, for the packing's scalar loads. */
function emitHalfToFloat(m: ModuleBuilder): FunctionBuilder {
  const f = m.function({ params: [i32], results: [f32] });
  const h = f.local(ValType.v128), em = f.local(ValType.v128);
  f.localGet(0).simd(SimdOp.i32x4Splat).localSet(h);
  emitWidenLanes(f, 'float16', h, em);
  f.simdLane(SimdLaneOp.f32x4ExtractLane, 0);
  return f;
}

export function buildMatmulModule(cfg: MatmulConfig, memory: MemoryImport, operands: MatmulOperandFormat = 'float32'): Uint8Array<ArrayBuffer> {
  validateMatmulConfig(cfg);
  const m = new ModuleBuilder().named(`matmul ${matmulConfigKey(cfg)}${operands === 'float32' ? '' : ` ${operands}`}`).importMemory(memory);
  const halfToFloat = operands === 'float16' ? emitHalfToFloat(m).index : -1;
  const packB = emitPackB(m, cfg, operands, halfToFloat);
  const packA = emitPackA(m, cfg, operands, halfToFloat);
  const micro = emitMicroKernel(m, cfg);
  const shift = operandBytes(operands) === 4 ? 2 : 1;
  const gemm = emitGemm(m, cfg, packA.index, packB.index, micro.index, shift);
  emitTask(m, cfg, gemm.index, packB.index, packA.index, shift);
  return m.encode();
}

/** f.localGet(x) for several locals, then `op`: a compact way to write `x op y`. */
function bin(f: FunctionBuilder, a: number, b: number, op: Op): FunctionBuilder {
  return f.localGet(a).localGet(b).op(op);
}

/** local = min(a, b) (signed i32). */
function minInto(f: FunctionBuilder, dst: number, a: () => void, b: () => void): void {
  a(); b(); a(); b();
  f.op(Op.i32LtS).op(Op.select).localSet(dst);
}

/** Emits an f32x4 shuffle of two operands on the stack: lanes 0–3 pick from the first, 4–7 from the second. */
function shuffleF32(f: FunctionBuilder, lanes: readonly [number, number, number, number]): void {
  f.i8x16Shuffle(lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
}

/**
 * Transposes the 4×4 block in locals r[0..3] (row i = r[i]) into out[0..3] (out[j] = column j),
 * using t[0..3] as temporaries: two rounds of unpack-style shuffles (unpcklps/unpckhps and
 * movlhps/movhlps on x64).
 */
function transpose4x4(f: FunctionBuilder, r: readonly number[], t: readonly number[], out: readonly number[]): void {
  f.localGet(r[0]!).localGet(r[1]!); shuffleF32(f, [0, 4, 1, 5]); f.localSet(t[0]!); // r0[0] r1[0] r0[1] r1[1]
  f.localGet(r[0]!).localGet(r[1]!); shuffleF32(f, [2, 6, 3, 7]); f.localSet(t[1]!); // r0[2] r1[2] r0[3] r1[3]
  f.localGet(r[2]!).localGet(r[3]!); shuffleF32(f, [0, 4, 1, 5]); f.localSet(t[2]!);
  f.localGet(r[2]!).localGet(r[3]!); shuffleF32(f, [2, 6, 3, 7]); f.localSet(t[3]!);
  f.localGet(t[0]!).localGet(t[2]!); shuffleF32(f, [0, 1, 4, 5]); f.localSet(out[0]!);
  f.localGet(t[0]!).localGet(t[2]!); shuffleF32(f, [2, 3, 6, 7]); f.localSet(out[1]!);
  f.localGet(t[1]!).localGet(t[3]!); shuffleF32(f, [0, 1, 4, 5]); f.localSet(out[2]!);
  f.localGet(t[1]!).localGet(t[3]!); shuffleF32(f, [2, 3, 6, 7]); f.localSet(out[3]!);
}

/**
 * Packs one full panel of `width` (a multiple of 4) lines of a matrix whose elements along k are
 * contiguous in each line (A row-major for packA, B = Wᵀ for packB): for each 4 steps of k, one
 * v128 load per line, 4×4 transposes, and `width`·4 contiguous floats stored. Leaves k at the
 * first step not done (kc rounded down to a multiple of 4), with `p` and `dst` advanced to it.
 * `p` = address of the panel's first line at k = 0; line i lives at p + lineOffsets[i].
 */
function emitTransposedPanel(
  f: FunctionBuilder, width: number, k: number, kc: number, p: number, dst: number, lineOffsets: readonly number[], load: OperandLoads,
): void {
  const rows = Array.from({ length: 4 }, () => f.local(ValType.v128));
  const tmp = Array.from({ length: 4 }, () => f.local(ValType.v128));
  const out = Array.from({ length: 4 }, () => f.local(ValType.v128));
  const kEnd = f.local(i32);
  f.localGet(kc).i32Const(-4).op(Op.i32And).localSet(kEnd);
  f.forRange(k, () => f.i32Const(0), () => f.localGet(kEnd), 4, () => {
    for (let g = 0; g < width / 4; g++) {
      for (let i = 0; i < 4; i++) {
        f.localGet(p);
        if (4 * g + i > 0) f.localGet(lineOffsets[4 * g + i]!).op(Op.i32Add);
        load.vec4(0, 2);
        f.localSet(rows[i]!);
      }
      transpose4x4(f, rows, tmp, out);
      for (let kk = 0; kk < 4; kk++) f.localGet(dst).localGet(out[kk]!).simdMem(SimdMemOp.v128Store, (kk * width + 4 * g) * 4, 2);
    }
    f.localGet(p).i32Const(4 * load.bytes).op(Op.i32Add).localSet(p);
    f.localGet(dst).i32Const(16 * width).op(Op.i32Add).localSet(dst);
  });
  f.localGet(kEnd).localSet(k);
}

/**
 * packB(src, rsB, csB, kc, nc, dst): strides in bytes. Writes ceil(nc/NR) panels, each kc rows
 * of NR floats, zero-padding columns ≥ nc; panel p starts at dst + p·(kc·NR·4 + PANEL_PAD_BYTES).
 */
function emitPackB(m: ModuleBuilder, cfg: MatmulConfig, operands: MatmulOperandFormat, halfToFloat: number): FunctionBuilder {
  const NR = cfg.nr;
  const f = m.function({ params: [i32, i32, i32, i32, i32, i32], results: [] }, 'packB');
  const load = new OperandLoads(f, operands, halfToFloat);
  const [src, rsB, csB, kc, nc, dst] = [0, 1, 2, 3, 4, 5];
  const jr = f.local(i32), nr = f.local(i32), k = f.local(i32), j = f.local(i32), col = f.local(i32), row = f.local(i32);
  const colOffsets = Array.from({ length: NR }, () => f.local(i32));
  const jStart = f.local(i32), nFull = f.local(i32), d = f.local(i32), base = f.local(i32), panelStride = f.local(i32);
  // Panels are PANEL_PAD_BYTES apart beyond their kc·NR floats (see matmul-config.ts).
  f.localGet(dst).localSet(base);
  f.localGet(kc).i32Const(NR * 4).op(Op.i32Mul).i32Const(PANEL_PAD_BYTES).op(Op.i32Add).localSet(panelStride);
  // Contiguous rows (B row-major): the full panels are filled row by row, so that B is read
  // sequentially (one long run per row, which the prefetcher follows) rather than a panel at a
  // time (NR floats per row, hopping a row stride each time). Any edge panel is left to the loop below.
  f.localGet(csB).i32Const(load.bytes).op(Op.i32Eq).if();
  {
    f.localGet(nc).localGet(nc).i32Const(NR).op(Op.i32RemU).op(Op.i32Sub).localSet(nFull);
    f.forRange(k, () => f.i32Const(0), () => f.localGet(kc), 1, () => {
      f.localGet(src).localGet(k).localGet(rsB).op(Op.i32Mul).op(Op.i32Add).localSet(row);
      f.localGet(dst).localGet(k).i32Const(NR * 4).op(Op.i32Mul).op(Op.i32Add).localSet(d);
      f.forRange(jr, () => f.i32Const(0), () => f.localGet(nFull), NR, () => {
        for (let v = 0; v < NR / 4; v++) {
          f.localGet(d).localGet(row);
          load.vec4(4 * v, 0);
          f.simdMem(SimdMemOp.v128Store, 16 * v);
        }
        f.localGet(row).i32Const(NR * load.bytes).op(Op.i32Add).localSet(row);
        f.localGet(d).localGet(panelStride).op(Op.i32Add).localSet(d);
      });
    });
    f.localGet(nFull).localSet(jStart);
  }
  f.else();
  f.i32Const(0).localSet(jStart);
  f.end();
  f.forRange(jr, () => f.localGet(jStart), () => f.localGet(nc), NR, () => {
    minInto(f, nr, () => f.i32Const(NR), () => bin(f, nc, jr, Op.i32Sub));
    f.localGet(base).localGet(jr).i32Const(NR).op(Op.i32DivU).localGet(panelStride).op(Op.i32Mul).op(Op.i32Add).localSet(dst);
    // col = src + jr*csB
    f.localGet(src).localGet(jr).localGet(csB).op(Op.i32Mul).op(Op.i32Add).localSet(col);
    // (Full panels of contiguous columns were packed above.)
    f.localGet(nr).i32Const(NR).op(Op.i32Eq).if();
    {
      // A full panel with strided columns (e.g. B = Wᵀ of a Linear layer).
      for (let jj = 1; jj < NR; jj++) f.localGet(csB).i32Const(jj).op(Op.i32Mul).localSet(colOffsets[jj]!);
      f.localGet(col).localSet(row);
      f.i32Const(0).localSet(k);
      // Contiguous along k (rsB = 1 element): 4×4 transposes for all but the last kc % 4 rows.
      f.localGet(rsB).i32Const(load.bytes).op(Op.i32Eq).if();
      emitTransposedPanel(f, NR, k, kc, row, dst, colOffsets, load);
      f.end();
      // The rest: NR scalar loads per row at precomputed column offsets, unrolled, no per-element branch.
      f.forRange(k, () => f.localGet(k), () => f.localGet(kc), 1, () => {
        for (let jj = 0; jj < NR; jj++) {
          f.localGet(dst).localGet(row);
          if (jj > 0) f.localGet(colOffsets[jj]!).op(Op.i32Add);
          load.scalar();
          f.mem(MemOp.f32Store, 4 * jj);
        }
        bin(f, row, rsB, Op.i32Add).localSet(row);
        f.localGet(dst).i32Const(NR * 4).op(Op.i32Add).localSet(dst);
      });
    }
    f.else();
    {
      f.localGet(col).localSet(row);
      f.forRange(k, () => f.i32Const(0), () => f.localGet(kc), 1, () => {
        // columns j < nr come from B, the rest are zero
        f.forRange(j, () => f.i32Const(0), () => f.i32Const(NR), 1, () => {
          f.localGet(dst).localGet(j).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
          f.localGet(j).localGet(nr).op(Op.i32LtS).if(f32)
            .localGet(row).localGet(j).localGet(csB).op(Op.i32Mul).op(Op.i32Add);
          load.scalar();
          f.else().f32Const(0).end();
          f.mem(MemOp.f32Store);
        });
        bin(f, row, rsB, Op.i32Add).localSet(row);
        f.localGet(dst).i32Const(NR * 4).op(Op.i32Add).localSet(dst);
      });
    }
    f.end();
  });
  return f;
}

/**
 * packA(src, rsA, csA, mc, kc, dst): strides in bytes. Writes ceil(mc/MR) panels, each kc
 * columns of MR floats (A[ir+r, k] at panel + (k·MR + r)·4), zero-padding rows ≥ mc; panel p
 * starts at dst + p·(kc·MR·4 + PANEL_PAD_BYTES).
 */
function emitPackA(m: ModuleBuilder, cfg: MatmulConfig, operands: MatmulOperandFormat, halfToFloat: number): FunctionBuilder {
  const MR = cfg.mr;
  const f = m.function({ params: [i32, i32, i32, i32, i32, i32], results: [] }, 'packA');
  const load = new OperandLoads(f, operands, halfToFloat);
  const [src, rsA, csA, mc, kc, dst] = [0, 1, 2, 3, 4, 5];
  const ir = f.local(i32), mr = f.local(i32), k = f.local(i32), r = f.local(i32), p = f.local(i32), rowBase = f.local(i32);
  const rowOffsets = Array.from({ length: MR }, () => f.local(i32));
  const irStart = f.local(i32), base = f.local(i32), panelStride = f.local(i32);
  f.i32Const(0).localSet(irStart);
  // Panels are PANEL_PAD_BYTES apart beyond their kc·MR floats (see matmul-config.ts).
  f.localGet(dst).localSet(base);
  f.localGet(kc).i32Const(MR * 4).op(Op.i32Mul).i32Const(PANEL_PAD_BYTES).op(Op.i32Add).localSet(panelStride);
  if (MR % 4 === 0) {
    // Adjacent rows (A = Gᵀ in a weight gradient, rsA = 1 element): the full panels are filled
    // k by k, so that A is read in runs of mc floats (a row of G) rather than MR floats per
    // column stride. One panel at a time would use 16 bytes of each line and come back for the
    // rest later, and with a power-of-two csA (e.g. 512 floats) those lines all fall into a few
    // L1 sets and are evicted before then; the hardware prefetchers do not follow such strides.
    const mFull = f.local(i32), d = f.local(i32);
    f.localGet(rsA).i32Const(load.bytes).op(Op.i32Eq).if();
    f.localGet(mc).localGet(mc).i32Const(MR).op(Op.i32RemU).op(Op.i32Sub).localSet(mFull);
    f.forRange(k, () => f.i32Const(0), () => f.localGet(kc), 1, () => {
      f.localGet(src).localGet(k).localGet(csA).op(Op.i32Mul).op(Op.i32Add).localSet(p);
      f.localGet(dst).localGet(k).i32Const(MR * 4).op(Op.i32Mul).op(Op.i32Add).localSet(d);
      f.forRange(ir, () => f.i32Const(0), () => f.localGet(mFull), MR, () => {
        for (let v = 0; v < MR / 4; v++) {
          f.localGet(d).localGet(p);
          load.vec4(4 * v, 0);
          f.simdMem(SimdMemOp.v128Store, 16 * v);
        }
        f.localGet(p).i32Const(MR * load.bytes).op(Op.i32Add).localSet(p);
        f.localGet(d).localGet(panelStride).op(Op.i32Add).localSet(d);
      });
    });
    f.localGet(mFull).localSet(irStart);
    f.end();
  }
  f.forRange(ir, () => f.localGet(irStart), () => f.localGet(mc), MR, () => {
    minInto(f, mr, () => f.i32Const(MR), () => bin(f, mc, ir, Op.i32Sub));
    f.localGet(base).localGet(ir).i32Const(MR).op(Op.i32DivU).localGet(panelStride).op(Op.i32Mul).op(Op.i32Add).localSet(dst);
    f.localGet(src).localGet(ir).localGet(rsA).op(Op.i32Mul).op(Op.i32Add).localSet(rowBase);
    // (With MR % 4 = 0, full panels of adjacent rows were packed above.)
    f.localGet(mr).i32Const(MR).op(Op.i32Eq).if();
    {
      for (let rr = 1; rr < MR; rr++) f.localGet(rsA).i32Const(rr).op(Op.i32Mul).localSet(rowOffsets[rr]!);
      f.localGet(rowBase).localSet(p);
      f.i32Const(0).localSet(k);
      if (MR % 4 === 0) {
        // Rows contiguous along k (A row-major, as in X·Wᵀ or an im2col matrix): 4×4 transposes
        // for all but the last kc % 4 columns.
        f.localGet(csA).i32Const(load.bytes).op(Op.i32Eq).if();
        emitTransposedPanel(f, MR, k, kc, p, dst, rowOffsets, load);
        f.end();
      }
      // The rest: MR strided loads per k, unrolled; p walks along k.
      f.forRange(k, () => f.localGet(k), () => f.localGet(kc), 1, () => {
        for (let rr = 0; rr < MR; rr++) {
          f.localGet(dst);
          f.localGet(p);
          if (rr > 0) f.localGet(rowOffsets[rr]!).op(Op.i32Add);
          load.scalar();
          f.mem(MemOp.f32Store, rr * 4);
        }
        bin(f, p, csA, Op.i32Add).localSet(p);
        f.localGet(dst).i32Const(MR * 4).op(Op.i32Add).localSet(dst);
      });
    }
    f.else();
    {
      f.forRange(k, () => f.i32Const(0), () => f.localGet(kc), 1, () => {
        f.forRange(r, () => f.i32Const(0), () => f.i32Const(MR), 1, () => {
          f.localGet(dst).localGet(r).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
          f.localGet(r).localGet(mr).op(Op.i32LtS).if(f32)
            .localGet(rowBase).localGet(r).localGet(rsA).op(Op.i32Mul).op(Op.i32Add)
            .localGet(k).localGet(csA).op(Op.i32Mul).op(Op.i32Add);
          load.scalar();
          f.else().f32Const(0).end();
          f.mem(MemOp.f32Store);
        });
        f.localGet(dst).i32Const(MR * 4).op(Op.i32Add).localSet(dst);
      });
    }
    f.end();
  });
  return f;
}

/**
 * micro(kc, pa, pb, c, rsC, csC, mr, nr, alpha, beta, bias, relu, tile): strides in bytes.
 * Computes the MR×NR product of an A panel and a B panel over kc, then stores
 * C[r, j] = alpha·acc + beta·C[r, j] (+ bias[j]) (ReLU) for r < mr, j < nr; beta = 0 never
 * reads C (it may hold NaN garbage), bias = 0 means none.
 */
function emitMicroKernel(m: ModuleBuilder, cfg: MatmulConfig): FunctionBuilder {
  const { mr: MR, nr: NR, unroll: U } = cfg;
  const NV = NR / 4;
  const f = m.function({ params: [i32, i32, i32, i32, i32, i32, i32, i32, f32, f32, i32, i32, i32], results: [] }, 'micro');
  const [kc, pa, pb, c, rsC, csC, mr, nr, alpha, beta, bias, relu, tile] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const acc: number[][] = [];
  for (let r = 0; r < MR; r++) acc.push(Array.from({ length: NV }, () => f.local(v128)));
  const bv = Array.from({ length: NV }, () => f.local(v128));
  const av = f.local(v128);
  const k = f.local(i32), kFull = f.local(i32), alphaV = f.local(v128), betaV = f.local(v128), zero = f.local(v128);
  const row = f.local(i32), j = f.local(i32), r = f.local(i32), x = f.local(f32), addr = f.local(i32);

  for (const rowAcc of acc) for (const a of rowAcc) f.f32x4Const(0, 0, 0, 0).localSet(a);

  const step = (aOff: number, bOff: number) => {
    for (let v = 0; v < NV; v++) f.localGet(pb).simdMem(SimdMemOp.v128Load, bOff + 16 * v).localSet(bv[v]!);
    for (let rr = 0; rr < MR; rr++) {
      f.localGet(pa).simdMem(SimdMemOp.v128Load32Splat, aOff + 4 * rr).localSet(av);
      for (let v = 0; v < NV; v++) {
        const a = acc[rr]![v]!;
        if (cfg.fma) f.localGet(av).localGet(bv[v]!).localGet(a).simd(SimdOp.f32x4RelaxedMadd).localSet(a);
        else f.localGet(a).localGet(av).localGet(bv[v]!).simd(SimdOp.f32x4Mul).simd(SimdOp.f32x4Add).localSet(a);
      }
    }
  };
  // Unrolled main loop over kc - kc % U, then one k at a time.
  f.localGet(kc).localGet(kc).i32Const(U).op(Op.i32RemU).op(Op.i32Sub).localSet(kFull);
  f.forRange(k, () => f.i32Const(0), () => f.localGet(kFull), U, () => {
    for (let t = 0; t < U; t++) step(t * MR * 4, t * NR * 4);
    f.localGet(pa).i32Const(U * MR * 4).op(Op.i32Add).localSet(pa);
    f.localGet(pb).i32Const(U * NR * 4).op(Op.i32Add).localSet(pb);
  });
  f.forRange(k, () => f.localGet(kFull), () => f.localGet(kc), 1, () => {
    step(0, 0);
    f.localGet(pa).i32Const(MR * 4).op(Op.i32Add).localSet(pa);
    f.localGet(pb).i32Const(NR * 4).op(Op.i32Add).localSet(pb);
  });

  f.localGet(alpha).simd(SimdOp.f32x4Splat).localSet(alphaV);
  f.localGet(beta).simd(SimdOp.f32x4Splat).localSet(betaV);
  f.f32x4Const(0, 0, 0, 0).localSet(zero);

  // Fast store: full tile, contiguous rows of C.
  f.localGet(mr).i32Const(MR).op(Op.i32Eq).localGet(nr).i32Const(NR).op(Op.i32Eq).op(Op.i32And)
    .localGet(csC).i32Const(4).op(Op.i32Eq).op(Op.i32And).if();
  // The common epilogues decided once per tile rather than per vector (with a short K, e.g.
  // attention's K = 32, the epilogue is a good part of a tile's time): alpha = 1, no bias, no
  // ReLU, and beta = 0 (plain stores) or beta = 1 (a later K block accumulating into C).
  f.localGet(alpha).f32Const(1).op(Op.f32Eq).localGet(bias).op(Op.i32Eqz).op(Op.i32And).localGet(relu).op(Op.i32Eqz).op(Op.i32And)
    .localGet(beta).f32Const(0).op(Op.f32Eq).localGet(beta).f32Const(1).op(Op.f32Eq).op(Op.i32Or).op(Op.i32And).if();
  {
    f.localGet(c).localSet(row);
    f.localGet(beta).f32Const(0).op(Op.f32Eq).if();
    for (let rr = 0; rr < MR; rr++) {
      for (let v = 0; v < NV; v++) f.localGet(row).localGet(acc[rr]![v]!).simdMem(SimdMemOp.v128Store, 16 * v, 2);
      if (rr < MR - 1) bin(f, row, rsC, Op.i32Add).localSet(row);
    }
    f.else();
    for (let rr = 0; rr < MR; rr++) {
      for (let v = 0; v < NV; v++) {
        f.localGet(row).localGet(acc[rr]![v]!).localGet(row).simdMem(SimdMemOp.v128Load, 16 * v, 2).simd(SimdOp.f32x4Add)
          .simdMem(SimdMemOp.v128Store, 16 * v, 2);
      }
      if (rr < MR - 1) bin(f, row, rsC, Op.i32Add).localSet(row);
    }
    f.end();
  }
  f.else();
  {
    f.localGet(c).localSet(row);
    for (let rr = 0; rr < MR; rr++) {
      for (let v = 0; v < NV; v++) {
        const a = acc[rr]![v]!;
        f.localGet(a).localGet(alphaV).simd(SimdOp.f32x4Mul).localSet(a);
        // beta: 0 → overwrite, 1 → add, else scale
        f.localGet(beta).f32Const(0).op(Op.f32Ne).if();
        f.localGet(beta).f32Const(1).op(Op.f32Eq).if();
        f.localGet(a).localGet(row).simdMem(SimdMemOp.v128Load, 16 * v, 2).simd(SimdOp.f32x4Add).localSet(a);
        f.else();
        f.localGet(a).localGet(row).simdMem(SimdMemOp.v128Load, 16 * v, 2).localGet(betaV).simd(SimdOp.f32x4Mul)
          .simd(SimdOp.f32x4Add).localSet(a);
        f.end().end();
        f.localGet(bias).if().localGet(a).localGet(bias).simdMem(SimdMemOp.v128Load, 16 * v, 2).simd(SimdOp.f32x4Add).localSet(a).end();
        f.localGet(relu).if().localGet(a).localGet(zero).simd(SimdOp.f32x4Max).localSet(a).end();
        f.localGet(row).localGet(a).simdMem(SimdMemOp.v128Store, 16 * v, 2);
      }
      if (rr < MR - 1) bin(f, row, rsC, Op.i32Add).localSet(row);
    }
  }
  f.end();
  f.else();
  {
    // Edge tile or strided C: park alpha·acc in the tile scratch, then a scalar epilogue.
    for (let rr = 0; rr < MR; rr++) {
      for (let v = 0; v < NV; v++) {
        f.localGet(tile).localGet(acc[rr]![v]!).localGet(alphaV).simd(SimdOp.f32x4Mul)
          .simdMem(SimdMemOp.v128Store, (rr * NR + 4 * v) * 4);
      }
    }
    f.forRange(r, () => f.i32Const(0), () => f.localGet(mr), 1, () => {
      f.forRange(j, () => f.i32Const(0), () => f.localGet(nr), 1, () => {
        f.localGet(tile).localGet(r).i32Const(NR).op(Op.i32Mul).localGet(j).op(Op.i32Add).i32Const(2).op(Op.i32Shl)
          .op(Op.i32Add).mem(MemOp.f32Load).localSet(x);
        f.localGet(c).localGet(r).localGet(rsC).op(Op.i32Mul).op(Op.i32Add)
          .localGet(j).localGet(csC).op(Op.i32Mul).op(Op.i32Add).localSet(addr);
        f.localGet(beta).f32Const(0).op(Op.f32Ne).if()
          .localGet(x).localGet(beta).localGet(addr).mem(MemOp.f32Load).op(Op.f32Mul).op(Op.f32Add).localSet(x)
          .end();
        f.localGet(bias).if()
          .localGet(x).localGet(bias).localGet(j).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.f32Load).op(Op.f32Add).localSet(x)
          .end();
        f.localGet(relu).if().localGet(x).f32Const(0).op(Op.f32Max).localSet(x).end();
        f.localGet(addr).localGet(x).mem(MemOp.f32Store);
      });
    });
  }
  f.end();
  return f;
}

/**
 * K blocks of equal depth, at most KC: K = 784 runs as 2 × 392 rather than 512 + 272, and
 * K = 1040 as 3 × 347 rather than 2 × 512 + 16, whose last block would pay a whole C
 * read-modify-write and an epilogue per tile for 16 steps. kStep = ceil(K / ceil(K / KC)).
 * The pack job and the compute job both derive their blocks from this.
 */
function emitKStep(f: FunctionBuilder, KC: number, K: number, kStep: number): void {
  f.localGet(K).localGet(K).i32Const(KC - 1).op(Op.i32Add).i32Const(KC).op(Op.i32DivU).localTee(kStep)
    .op(Op.i32Add).i32Const(1).op(Op.i32Sub).localGet(kStep).op(Op.i32DivU).localSet(kStep);
}

/**
 * gemm(a, rsA, csA, b, rsB, csB, c, rsC, csC, M, N, K, alpha, beta, bias, relu, scratch,
 *      packedB, packedBStride, packedA, packedAStride):
 * strides in elements, addresses in bytes; K ≥ 1. C[M×N] = alpha·A·B + beta·C (+bias) (ReLU).
 * With packedB ≠ 0, B was packed beforehand: the (jc, pc) blocks in loop order, packedBStride
 * bytes apart, each laid out as packB writes it; `b` is then unused. Likewise packedA ≠ 0: the
 * (pc, ic) blocks of A in loop order (the same for every jc), packedAStride bytes apart.
 */
function emitGemm(m: ModuleBuilder, cfg: MatmulConfig, packA: number, packB: number, micro: number, shiftAB: number): FunctionBuilder {
  const { mr: MR, nr: NR, kc: KC, mc: MC, nc: NC } = cfg;
  const layout = matmulScratchLayout(cfg);
  const f = m.function({
    params: [i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, f32, f32, i32, i32, i32, i32, i32, i32, i32], results: [],
  }, 'gemm');
  const [a, rsA, csA, b, rsB, csB, c, rsC, csC, M, N, K, alpha, beta, bias, relu, scratch, packedB, packedBStride, packedA, packedAStride] =
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
  const block = f.local(i32), pbBlock = f.local(i32), aBlock = f.local(i32), paBlock = f.local(i32);
  const jc = f.local(i32), nc = f.local(i32), pc = f.local(i32), kc = f.local(i32), ic = f.local(i32), mc = f.local(i32);
  const jr = f.local(i32), ir = f.local(i32), betaK = f.local(f32), last = f.local(i32);
  const pA = f.local(i32), pB = f.local(i32), tile = f.local(i32), mrEdge = f.local(i32), nrEdge = f.local(i32);
  const kStep = f.local(i32), strideA = f.local(i32), paPanel = f.local(i32), pbPanel = f.local(i32), cTile = f.local(i32);
  const biasOn = f.local(i32), reluOn = f.local(i32), biasPtr = f.local(i32);

  // Strides to bytes once (A's and B's elements may be 2-byte half-format patterns; C is float32).
  for (const s of [rsA, csA, rsB, csB]) f.localGet(s).i32Const(shiftAB).op(Op.i32Shl).localSet(s);
  for (const s of [rsC, csC]) f.localGet(s).i32Const(2).op(Op.i32Shl).localSet(s);
  f.localGet(scratch).i32Const(layout.packA).op(Op.i32Add).localSet(pA);
  f.localGet(scratch).i32Const(layout.packB).op(Op.i32Add).localSet(pB);
  f.localGet(scratch).i32Const(layout.tile).op(Op.i32Add).localSet(tile);

  emitKStep(f, KC, K, kStep);
  f.i32Const(0).localSet(block);

  f.forRange(jc, () => f.i32Const(0), () => f.localGet(N), NC, () => {
    minInto(f, nc, () => f.i32Const(NC), () => bin(f, N, jc, Op.i32Sub));
    f.i32Const(0).localSet(aBlock);
    f.forRange(pc, () => f.i32Const(0), () => f.localGet(K), () => f.localGet(kStep), () => {
      minInto(f, kc, () => f.localGet(kStep), () => bin(f, K, pc, Op.i32Sub));
      // beta applies on the first K block only; later blocks accumulate.
      f.localGet(beta).f32Const(1).localGet(pc).op(Op.i32Eqz).op(Op.select).localSet(betaK);
      bin(f, pc, kc, Op.i32Add).localGet(K).op(Op.i32GeS).localSet(last);
      f.localGet(packedB).if();
      {
        // packedB + block·packedBStride
        f.localGet(packedB).localGet(block).localGet(packedBStride).op(Op.i32Mul).op(Op.i32Add).localSet(pbBlock);
      }
      f.else();
      {
        // packB(b + pc*rsB + jc*csB, rsB, csB, kc, nc, pB)
        f.localGet(b).localGet(pc).localGet(rsB).op(Op.i32Mul).op(Op.i32Add).localGet(jc).localGet(csB).op(Op.i32Mul).op(Op.i32Add)
          .localGet(rsB).localGet(csB).localGet(kc).localGet(nc).localGet(pB).call(packB);
        f.localGet(pB).localSet(pbBlock);
      }
      f.end();
      f.localGet(block).i32Const(1).op(Op.i32Add).localSet(block);
      f.forRange(ic, () => f.i32Const(0), () => f.localGet(M), MC, () => {
        minInto(f, mc, () => f.i32Const(MC), () => bin(f, M, ic, Op.i32Sub));
        f.localGet(packedA).if();
        {
          f.localGet(packedA).localGet(aBlock).localGet(packedAStride).op(Op.i32Mul).op(Op.i32Add).localSet(paBlock);
        }
        f.else();
        {
          f.localGet(a).localGet(ic).localGet(rsA).op(Op.i32Mul).op(Op.i32Add).localGet(pc).localGet(csA).op(Op.i32Mul).op(Op.i32Add)
            .localGet(rsA).localGet(csA).localGet(mc).localGet(kc).localGet(pA).call(packA);
          f.localGet(pA).localSet(paBlock);
        }
        f.end();
        f.localGet(aBlock).i32Const(1).op(Op.i32Add).localSet(aBlock);
        // Per jr: the B panel, the C column, the edge width, bias and ReLU; per ir only the A
        // panel and the C row advance (with a short K, e.g. attention's 32, these per-tile
        // arguments are a visible share of the time).
        f.localGet(kc).i32Const(MR * 4).op(Op.i32Mul).i32Const(PANEL_PAD_BYTES).op(Op.i32Add).localSet(strideA);
        f.localGet(pbBlock).localSet(pbPanel);
        f.localGet(bias).i32Const(0).op(Op.i32Ne).localGet(last).op(Op.i32And).localSet(biasOn);
        f.localGet(relu).i32Const(0).op(Op.i32Ne).localGet(last).op(Op.i32And).localSet(reluOn);
        f.forRange(jr, () => f.i32Const(0), () => f.localGet(nc), NR, () => {
          minInto(f, nrEdge, () => f.i32Const(NR), () => bin(f, nc, jr, Op.i32Sub));
          // bias pointer only on the last K block
          f.localGet(bias).localGet(jc).localGet(jr).op(Op.i32Add).i32Const(2).op(Op.i32Shl).op(Op.i32Add).i32Const(0)
            .localGet(biasOn).op(Op.select).localSet(biasPtr);
          // c + ic*rsC + (jc+jr)*csC, then + MR rows per ir
          f.localGet(c).localGet(ic).localGet(rsC).op(Op.i32Mul).op(Op.i32Add)
            .localGet(jc).localGet(jr).op(Op.i32Add).localGet(csC).op(Op.i32Mul).op(Op.i32Add).localSet(cTile);
          f.localGet(paBlock).localSet(paPanel);
          f.forRange(ir, () => f.i32Const(0), () => f.localGet(mc), MR, () => {
            f.localGet(kc).localGet(paPanel).localGet(pbPanel).localGet(cTile).localGet(rsC).localGet(csC);
            minInto(f, mrEdge, () => f.i32Const(MR), () => bin(f, mc, ir, Op.i32Sub));
            f.localGet(mrEdge).localGet(nrEdge).localGet(alpha).localGet(betaK).localGet(biasPtr).localGet(reluOn).localGet(tile);
            f.call(micro);
            bin(f, paPanel, strideA, Op.i32Add).localSet(paPanel);
            f.localGet(cTile).localGet(rsC).i32Const(MR).op(Op.i32Mul).op(Op.i32Add).localSet(cTile);
          });
          // next B panel: kc·NR floats + the pad
          f.localGet(pbPanel).localGet(kc).i32Const(NR * 4).op(Op.i32Mul).i32Const(PANEL_PAD_BYTES).op(Op.i32Add).op(Op.i32Add).localSet(pbPanel);
        });
      });
    });
  });
  return f;
}

/**
 * One unit of a pack job: unit → (block, slice) of the operand packed whole, then its pack
 * function on that slice's whole panels. B's blocks come in the kernel's (jc, pc) order, NC
 * columns by a K block, sliced by NR-column panels; A's in (pc, ic) order, MC rows by a K block,
 * sliced by MR-row panels. "Lines" are B's columns or A's rows: the packed panels' width runs
 * along them, k along the other stride.
 */
function emitPackUnit(
  f: FunctionBuilder, P: (field: keyof typeof MatmulParam) => void, unit: number, cfg: MatmulConfig, operand: 'a' | 'b', pack: number, shift: number,
): void {
  const isA = operand === 'a';
  const W = isA ? cfg.mr : cfg.nr;
  const BLOCK = isA ? cfg.mc : cfg.nc;
  const lineStride = isA ? 'rsA' : 'csB';
  const kStride = isA ? 'csA' : 'rsB';
  const K = f.local(i32), kStep = f.local(i32), innerCount = f.local(i32), slices = f.local(i32), block = f.local(i32);
  const slice = f.local(i32), line0 = f.local(i32), pc = f.local(i32), lines = f.local(i32), kcB = f.local(i32);
  const perSlice = f.local(i32), first = f.local(i32), len = f.local(i32);
  P('k'); f.localSet(K);
  emitKStep(f, cfg.kc, K, kStep);
  // Blocks per outer step: A's line blocks (ic) inside each K block; B's K blocks (pc) inside each line block (jc).
  if (isA) { P('m'); f.i32Const(BLOCK - 1).op(Op.i32Add).i32Const(BLOCK).op(Op.i32DivU).localSet(innerCount); }
  else bin(f, K, kStep, Op.i32Add).i32Const(1).op(Op.i32Sub).localGet(kStep).op(Op.i32DivU).localSet(innerCount);
  P('packSlices'); f.localSet(slices);
  bin(f, unit, slices, Op.i32DivU).localSet(block);
  bin(f, unit, slices, Op.i32RemU).localSet(slice);
  if (isA) {
    bin(f, block, innerCount, Op.i32DivU).localGet(kStep).op(Op.i32Mul).localSet(pc);
    bin(f, block, innerCount, Op.i32RemU).i32Const(BLOCK).op(Op.i32Mul).localSet(line0);
  } else {
    bin(f, block, innerCount, Op.i32DivU).i32Const(BLOCK).op(Op.i32Mul).localSet(line0);
    bin(f, block, innerCount, Op.i32RemU).localGet(kStep).op(Op.i32Mul).localSet(pc);
  }
  minInto(f, lines, () => f.i32Const(BLOCK), () => { P(isA ? 'm' : 'n'); f.localGet(line0).op(Op.i32Sub); });
  minInto(f, kcB, () => f.localGet(kStep), () => bin(f, K, pc, Op.i32Sub));
  // Lines per slice: ceil(ceil(lines / W) / slices) whole panels.
  f.localGet(lines).i32Const(W - 1).op(Op.i32Add).i32Const(W).op(Op.i32DivU)
    .localGet(slices).op(Op.i32Add).i32Const(1).op(Op.i32Sub).localGet(slices).op(Op.i32DivU).i32Const(W).op(Op.i32Mul).localSet(perSlice);
  bin(f, slice, perSlice, Op.i32Mul).localSet(first);
  bin(f, first, lines, Op.i32LtS).if();
  {
    // pack(base + ((line0 + first)·lineStride + pc·kStride)·bytes, rs·bytes, cs·bytes, A: (len, kcB) | B: (kcB, len),
    //      packed + block·packedStride + (first / W)·(kcB·W·4 + pad))
    P(operand); f.localGet(line0).localGet(first).op(Op.i32Add); P(lineStride); f.op(Op.i32Mul).localGet(pc); P(kStride);
    f.op(Op.i32Mul).op(Op.i32Add).i32Const(shift).op(Op.i32Shl).op(Op.i32Add);
    P(isA ? 'rsA' : 'rsB'); f.i32Const(shift).op(Op.i32Shl);
    P(isA ? 'csA' : 'csB'); f.i32Const(shift).op(Op.i32Shl);
    minInto(f, len, () => f.localGet(perSlice), () => bin(f, lines, first, Op.i32Sub));
    if (isA) f.localGet(len).localGet(kcB); else f.localGet(kcB).localGet(len);
    P(isA ? 'packedA' : 'packedB'); f.localGet(block); P(isA ? 'packedAStride' : 'packedBStride'); f.op(Op.i32Mul).op(Op.i32Add)
      .localGet(first).i32Const(W).op(Op.i32DivU).localGet(kcB).i32Const(W * 4).op(Op.i32Mul).i32Const(PANEL_PAD_BYTES).op(Op.i32Add)
      .op(Op.i32Mul).op(Op.i32Add);
    f.call(pack);
  }
  f.end();
}

/**
 * task(unit, params, thread), in one of two modes (params.mode):
 * - compute (0): unit → (outer batch, batch, M chunk, N chunk), then gemm on that part with
 *   this thread's scratch. Units are numbered outer-major, then batch, M chunk, N chunk.
 * - pack (1): unit → (KC×NC block of B, column slice); packs that slice of the block into the
 *   shared packed B (params.packedB), where the compute job that follows reads it. Packing B once
 *   for all units, instead of once per unit, lets a product be cut into many M chunks for load
 *   balance without packing B again for each.
 * - pack A (2): the same for A, unit → (MC×KC block, row slice), for products cut into N chunks.
 */
function emitTask(m: ModuleBuilder, cfg: MatmulConfig, gemm: number, packB: number, packA: number, shiftAB: number): void {
  const f = m.function({ params: [i32, i32, i32], results: [] }, 'task');
  const [unit, params, thread] = [0, 1, 2];
  const P = (field: keyof typeof MatmulParam) => f.localGet(params).mem(MemOp.i32Load, MatmulParam[field] * 4);
  const PF = (field: keyof typeof MatmulParam) => f.localGet(params).mem(MemOp.f32Load, MatmulParam[field] * 4);
  const perBatch = f.local(i32), bi = f.local(i32), rest = f.local(i32), mu = f.local(i32), nu = f.local(i32);
  const m0 = f.local(i32), n0 = f.local(i32), mLen = f.local(i32), nLen = f.local(i32), bo = f.local(i32);

  P('mode').i32Const(2).op(Op.i32Eq).if();
  emitPackUnit(f, P, unit, cfg, 'a', packA, shiftAB);
  f.return().end();
  P('mode').if();
  emitPackUnit(f, P, unit, cfg, 'b', packB, shiftAB);
  f.return().end();

  P('mUnits'); P('nUnits'); f.op(Op.i32Mul).localSet(perBatch);
  bin(f, unit, perBatch, Op.i32DivU).localSet(bi);
  bin(f, unit, perBatch, Op.i32RemU).localSet(rest);
  // bi counts over outer × batch: split it.
  f.localGet(bi); P('batch'); f.op(Op.i32DivU).localSet(bo);
  f.localGet(bi); P('batch'); f.op(Op.i32RemU).localSet(bi);
  f.localGet(rest); P('nUnits'); f.op(Op.i32DivU).localSet(mu);
  f.localGet(rest); P('nUnits'); f.op(Op.i32RemU).localSet(nu);
  f.localGet(mu); P('mChunk'); f.op(Op.i32Mul).localSet(m0);
  f.localGet(nu); P('nChunk'); f.op(Op.i32Mul).localSet(n0);
  minInto(f, mLen, () => P('mChunk'), () => { P('m'); f.localGet(m0).op(Op.i32Sub); });
  minInto(f, nLen, () => P('nChunk'), () => { P('n'); f.localGet(n0).op(Op.i32Sub); });
  // a + (bo*osA + bi*bsA + m0*rsA)·bytes
  P('a'); f.localGet(bo); P('osA'); f.op(Op.i32Mul).localGet(bi); P('bsA'); f.op(Op.i32Mul).op(Op.i32Add)
    .localGet(m0); P('rsA'); f.op(Op.i32Mul).op(Op.i32Add).i32Const(shiftAB).op(Op.i32Shl).op(Op.i32Add);
  P('rsA'); P('csA');
  P('b'); f.localGet(bo); P('osB'); f.op(Op.i32Mul).localGet(bi); P('bsB'); f.op(Op.i32Mul).op(Op.i32Add)
    .localGet(n0); P('csB'); f.op(Op.i32Mul).op(Op.i32Add).i32Const(shiftAB).op(Op.i32Shl).op(Op.i32Add);
  P('rsB'); P('csB');
  P('c'); f.localGet(bo); P('osC'); f.op(Op.i32Mul).localGet(bi); P('bsC'); f.op(Op.i32Mul).op(Op.i32Add)
    .localGet(m0); P('rsC'); f.op(Op.i32Mul).op(Op.i32Add)
    .localGet(n0); P('csC'); f.op(Op.i32Mul).op(Op.i32Add).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
  P('rsC'); P('csC');
  f.localGet(mLen).localGet(nLen); P('k');
  PF('alpha'); PF('beta');
  // bias + n0*4, or 0
  P('bias'); f.localGet(n0).i32Const(2).op(Op.i32Shl).op(Op.i32Add).i32Const(0); P('bias'); f.op(Op.select);
  P('relu');
  P('scratch'); f.localGet(thread); P('scratchStride'); f.op(Op.i32Mul).op(Op.i32Add);
  P('packedB'); P('packedBStride'); P('packedA'); P('packedAStride');
  f.call(gemm);
}
