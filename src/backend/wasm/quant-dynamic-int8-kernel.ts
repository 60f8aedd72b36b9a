// Generated kernels for dynamically quantized int8 linear layers (int8 activations × int8 weights,
// accumulated exactly in int32):
//
//   y[i, j] = fp32(fp32(fp32(Σ_k xq[i, k] · wq[j, k]) · sw[j]) · sx[i]) (+ b[j], rounded to fp32)
//
//   dqrows(desc, r0, nr)   quantizes rows r0..r0+nr of x (float32) per row, symmetric:
//                          amax = max|x|, sx = max(fp32(amax / 127), 2^-126), codes =
//                          nearest_even(fp32(x · fp32(1 / sx))) as int16, into the packed activation
//                          buffer (layout below), zero-padded to Kp = ceil(K / 8) · 8.
//   dqgemm(desc, j0, nj)   output features j0..j0+nj of every row: register tiles of R rows × C
//                          features of i32x4 accumulators; per 8 k, one v128 load of each row's 8
//                          int16 codes, one v128.load8x8_s (8 int8 weights sign-extended to int16)
//                          per feature, and R·C i32x4.dot_i16x8_s + i32x4.add (8 multiply-adds per
//                          pair: 2 per lane). The 4 lanes are summed once per output at the end.
//                          Rows are walked in blocks of MC (the block's codes stay in L2) and the
//                          features in blocks of JB (their weight rows stay in L1/L2).
//
// Packed activations: rows in blocks of 4 (the last block has the remaining 1-3 rows, h of them);
// block b starts at byte 4b · Kp · 2 and holds, for each 8-element step s of k, the h rows' 8 int16
// codes one after the other (16 bytes each): row r of the block at s · 16h + 16r. So one pointer
// with constant offsets reaches every row of a tile, and a step is 16h bytes.
//
// The weights are read as stored (n rows of k int8, no packing, so nothing to cache or invalidate);
// a row whose length is not a multiple of 8 is read up to 7 bytes past its end, which the zero
// codes of x's padding make harmless (garbage · 0 = 0, in integers). The host keeps those reads
// inside the memory. |Σ| ≤ K · 127² < 2^31 for K ≤ 133,144 (the host refuses more).
//
// Tiles (R rows × C features; V8 on x64 has 16 xmm registers): 4×2 (8 accumulators + 4 row
// vectors + 1 weight vector), 3×2, 2×4, 1×8; each also has a C = 1 tail for the last features.

import { ModuleBuilder, FunctionBuilder, ValType, Op, MemOp, MiscOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport } from './encoder.js';
import { emitRowTask } from './row-task.js';
import { DQ_MIN_SCALE } from '../cpu/quantized-kernels.js';

const { i32, f32, v128 } = ValType;

/** Word offsets of the descriptor's fields (all i32). */
export const DQDesc = {
  x: 0, m: 1, k: 2, kp: 3, xq: 4, sx: 5, w: 6, n: 7, sw: 8, swStrideBytes: 9, bias: 10, out: 11, raw: 12, mc: 13, jb: 14,
} as const;
export const DQDESC_WORDS = 15;

export const DQROWS_TASK_INDEX = 0;
export const DQGEMM_TASK_INDEX = 1;
export const DQROWS_EXPORT = 'dqrows';
export const DQGEMM_EXPORT = 'dqgemm';
export const DQKERNEL_PARAMS = [i32, i32, i32] as const;

/** Rows × features of the register tile for a row block of h rows (h = 1..4). */
export const DQ_TILE_COLUMNS: Readonly<Record<number, number>> = { 1: 8, 2: 4, 3: 2, 4: 2 };

// The smallest activation scale, 2^-126 (float32's smallest normal, so that 1 / sx is finite), is the
// reference kernel's (backend/cpu/quantized-kernels.ts).
export { DQ_MIN_SCALE };

/** Steps of 8 k per loop iteration (2 and 4 measured no faster than 1 on the dev VM: V8 adds no overhead worth removing). */
const UNROLL = 1;

// SIMD opcodes not in opcodes.ts (values from the SIMD spec).
const Simd = { i16x8NarrowI32x4S: 0x85, i32x4DotI16x8S: 0xba } as const;
const V128_LOAD8X8_S = 0x01;
const simdOp = (code: number): SimdOp => code as unknown as SimdOp;

export function buildDynamicInt8Module(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().named('quant-dynamic-int8').importMemory(memory);
  const rows = emitQuantizeRows(m);
  const tiles = [1, 2, 3, 4].map((h) => emitTile(m, h, DQ_TILE_COLUMNS[h]!));
  const gemm = emitGemm(m, tiles);
  emitRowTask(m, [{ fn: rows, params: DQKERNEL_PARAMS }, { fn: gemm, params: DQKERNEL_PARAMS }]);
  return m.encode();
}

function field(f: FunctionBuilder, desc: number, name: keyof typeof DQDesc): FunctionBuilder {
  return f.localGet(desc).mem(MemOp.i32Load, 4 * DQDesc[name]);
}

/** dqrows(desc, r0, nr): per-row scales into sx[], int16 codes into the packed buffer. */
function emitQuantizeRows(m: ModuleBuilder): FunctionBuilder {
  const f = m.function({ params: [...DQKERNEL_PARAMS], results: [] }, DQROWS_EXPORT);
  const [desc, r0, nr] = [0, 1, 2];
  const r = f.local(i32), rEnd = f.local(i32), k = f.local(i32), xr = f.local(i32), i = f.local(i32), e = f.local(i32);
  const dst = f.local(i32), stride = f.local(i32), h = f.local(i32), block = f.local(i32), mRows = f.local(i32);
  const vmax = f.local(v128), vinv = f.local(v128), amax = f.local(f32), sx = f.local(f32), inv = f.local(f32), q = f.local(i32);
  field(f, desc, 'k').localSet(k);
  field(f, desc, 'm').localSet(mRows);
  f.localGet(r0).localGet(nr).op(Op.i32Add).localSet(rEnd);
  f.forRange(r, () => f.localGet(r0), () => f.localGet(rEnd), 1, () => {
    // xr = x + r · k · 4
    field(f, desc, 'x').localGet(r).localGet(k).op(Op.i32Mul).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(xr);
    // amax over whole vectors, then the lanes, then the tail (max propagates NaN, like Math.max).
    f.f32x4Const(0, 0, 0, 0).localSet(vmax);
    f.i32Const(0).localSet(i);
    f.block().loop();
    f.localGet(i).i32Const(4).op(Op.i32Add).localGet(k).op(Op.i32GtS).brIf(1);
    f.localGet(vmax)
      .localGet(xr).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).simdMem(SimdMemOp.v128Load, 0, 2)
      .simd(SimdOp.f32x4Abs).simd(SimdOp.f32x4Max).localSet(vmax);
    f.localGet(i).i32Const(4).op(Op.i32Add).localSet(i).br(0);
    f.end().end();
    f.localGet(vmax).simdLane(SimdLaneOp.f32x4ExtractLane, 0).localGet(vmax).simdLane(SimdLaneOp.f32x4ExtractLane, 1).op(Op.f32Max)
      .localGet(vmax).simdLane(SimdLaneOp.f32x4ExtractLane, 2).localGet(vmax).simdLane(SimdLaneOp.f32x4ExtractLane, 3).op(Op.f32Max)
      .op(Op.f32Max).localSet(amax);
    f.forRange(e, () => f.localGet(i), () => f.localGet(k), 1, () => {
      f.localGet(amax).localGet(xr).localGet(e).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.f32Load).op(Op.f32Abs).op(Op.f32Max).localSet(amax);
    });
    f.localGet(amax).f32Const(127).op(Op.f32Div).f32Const(DQ_MIN_SCALE).op(Op.f32Max).localSet(sx);
    field(f, desc, 'sx').localGet(r).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localGet(sx).mem(MemOp.f32Store);
    f.f32Const(1).localGet(sx).op(Op.f32Div).localTee(inv).simd(SimdOp.f32x4Splat).localSet(vinv);
    // Block of 4 rows holding r, its height h (the last one may be shorter), this row's first slot.
    f.localGet(r).i32Const(-4).op(Op.i32And).localSet(block);
    f.localGet(mRows).localGet(block).op(Op.i32Sub).localTee(h).i32Const(4).localGet(h).i32Const(4).op(Op.i32LtS).op(Op.select).localSet(h);
    f.localGet(h).i32Const(4).op(Op.i32Shl).localSet(stride);
    field(f, desc, 'xq').localGet(block);
    field(f, desc, 'kp').op(Op.i32Mul).i32Const(1).op(Op.i32Shl).op(Op.i32Add)
      .localGet(r).i32Const(3).op(Op.i32And).i32Const(4).op(Op.i32Shl).op(Op.i32Add).localSet(dst);
    // Whole steps of 8: two f32x4 → nearest → i32 → one i16x8.
    const quant4 = (offset: number) => {
      f.localGet(xr).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).simdMem(SimdMemOp.v128Load, offset, 2)
        .localGet(vinv).simd(SimdOp.f32x4Mul).simd(SimdOp.f32x4Nearest).simd(SimdOp.i32x4TruncSatF32x4S);
    };
    f.i32Const(0).localSet(i);
    f.block().loop();
    f.localGet(i).i32Const(8).op(Op.i32Add).localGet(k).op(Op.i32GtS).brIf(1);
    f.localGet(dst);
    quant4(0);
    quant4(16);
    f.simd(simdOp(Simd.i16x8NarrowI32x4S)).simdMem(SimdMemOp.v128Store, 0, 4);
    f.localGet(dst).localGet(stride).op(Op.i32Add).localSet(dst);
    f.localGet(i).i32Const(8).op(Op.i32Add).localSet(i).br(0);
    f.end().end();
    // A partial last step: the remaining elements, then zeros up to the step's end.
    f.localGet(i).localGet(k).op(Op.i32LtS).if();
    for (let l = 0; l < 8; l++) {
      f.localGet(i).i32Const(l).op(Op.i32Add).localGet(k).op(Op.i32LtS).if();
      f.localGet(xr).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.f32Load, 4 * l)
        .localGet(inv).op(Op.f32Mul).op(Op.f32Nearest).misc(MiscOp.i32TruncSatF32S).localSet(q);
      f.else();
      f.i32Const(0).localSet(q);
      f.end();
      f.localGet(dst).localGet(q).mem(MemOp.i32Store16, 2 * l);
    }
    f.end();
  });
  return f;
}

/**
 * tile_h(desc, jb, jn, rb): rows rb..rb+h (one packed block) × features jb..jb+jn, in tiles of C
 * features, then single features for the rest.
 */
function emitTile(m: ModuleBuilder, h: number, cols: number): FunctionBuilder {
  const f = m.function({ params: [i32, i32, i32, i32], results: [] });
  const [desc, jb, jn, rb] = [0, 1, 2, 3];
  const j = f.local(i32), jEnd = f.local(i32), px0 = f.local(i32), pxEnd = f.local(i32), px = f.local(i32), k = f.local(i32);
  const n = f.local(i32), raw = f.local(i32), bias = f.local(i32), sw = f.local(i32), swStride = f.local(i32), out = f.local(i32), sxBase = f.local(i32);
  const pw = Array.from({ length: cols }, () => f.local(i32));
  const xv = Array.from({ length: h }, () => f.local(v128));
  const wv = f.local(v128);
  const acc = Array.from({ length: h }, () => Array.from({ length: cols }, () => f.local(v128)));
  const s = f.local(i32), y = f.local(f32), oAddr = f.local(i32);
  field(f, desc, 'k').localSet(k);
  field(f, desc, 'n').localSet(n);
  field(f, desc, 'raw').localSet(raw);
  field(f, desc, 'bias').localSet(bias);
  field(f, desc, 'sw').localSet(sw);
  field(f, desc, 'swStrideBytes').localSet(swStride);
  field(f, desc, 'out').localSet(out);
  field(f, desc, 'sx').localGet(rb).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(sxBase);
  // px0 = xq + rb · kp · 2; the block's steps are 16h bytes each, kp / 8 of them.
  field(f, desc, 'xq').localGet(rb);
  field(f, desc, 'kp').op(Op.i32Mul).i32Const(1).op(Op.i32Shl).op(Op.i32Add).localSet(px0);
  f.localGet(px0);
  field(f, desc, 'kp').i32Const(3).op(Op.i32ShrU).i32Const(16 * h).op(Op.i32Mul).op(Op.i32Add).localSet(pxEnd);
  f.localGet(jb).localGet(jn).op(Op.i32Add).localSet(jEnd);

  const body = (c: number) => {
    for (let r = 0; r < h; r++) for (let cc = 0; cc < c; cc++) f.v128Const(new Uint8Array(16)).localSet(acc[r]![cc]!);
    for (let cc = 0; cc < c; cc++) {
      field(f, desc, 'w').localGet(j).i32Const(cc).op(Op.i32Add).localGet(k).op(Op.i32Mul).op(Op.i32Add).localSet(pw[cc]!);
    }
    f.localGet(px0).localSet(px);
    // `unroll` steps of 8 k per iteration while they fit, then single steps.
    for (const steps of UNROLL > 1 ? [UNROLL, 1] : [1]) {
      f.block().loop();
      f.localGet(px).i32Const(16 * h * steps).op(Op.i32Add).localGet(pxEnd).op(Op.i32GtU).brIf(1);
      for (let u = 0; u < steps; u++) {
        for (let r = 0; r < h; r++) f.localGet(px).simdMem(SimdMemOp.v128Load, 16 * h * u + 16 * r, 4).localSet(xv[r]!);
        for (let cc = 0; cc < c; cc++) {
          f.localGet(pw[cc]!).simdMem(V128_LOAD8X8_S as unknown as SimdMemOp, 8 * u, 0).localSet(wv);
          for (let r = 0; r < h; r++) {
            f.localGet(acc[r]![cc]!).localGet(xv[r]!).localGet(wv).simd(simdOp(Simd.i32x4DotI16x8S)).simd(SimdOp.i32x4Add).localSet(acc[r]![cc]!);
          }
        }
      }
      for (let cc = 0; cc < c; cc++) f.localGet(pw[cc]!).i32Const(8 * steps).op(Op.i32Add).localSet(pw[cc]!);
      f.localGet(px).i32Const(16 * h * steps).op(Op.i32Add).localSet(px).br(0);
      f.end().end();
    }
    // Epilogue: sum the lanes (exact), then raw int32 or the scaled float32 output.
    for (let r = 0; r < h; r++) {
      for (let cc = 0; cc < c; cc++) {
        const a = acc[r]![cc]!;
        f.localGet(a).simdLane(SimdLaneOp.i32x4ExtractLane, 0).localGet(a).simdLane(SimdLaneOp.i32x4ExtractLane, 1).op(Op.i32Add)
          .localGet(a).simdLane(SimdLaneOp.i32x4ExtractLane, 2).localGet(a).simdLane(SimdLaneOp.i32x4ExtractLane, 3).op(Op.i32Add)
          .op(Op.i32Add).localSet(s);
        // oAddr = out + ((rb + r) · n + j + cc) · 4
        f.localGet(out).localGet(rb).i32Const(r).op(Op.i32Add).localGet(n).op(Op.i32Mul).localGet(j).op(Op.i32Add).i32Const(cc).op(Op.i32Add)
          .i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(oAddr);
        f.localGet(raw).if();
        f.localGet(oAddr).localGet(s).mem(MemOp.i32Store);
        f.else();
        f.localGet(s).op(Op.f32ConvertI32S)
          .localGet(sw).localGet(j).i32Const(cc).op(Op.i32Add).localGet(swStride).op(Op.i32Mul).op(Op.i32Add).mem(MemOp.f32Load).op(Op.f32Mul)
          .localGet(sxBase).mem(MemOp.f32Load, 4 * r).op(Op.f32Mul).localSet(y);
        f.localGet(bias).if();
        f.localGet(y).localGet(bias).localGet(j).i32Const(cc).op(Op.i32Add).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.f32Load).op(Op.f32Add).localSet(y);
        f.end();
        f.localGet(oAddr).localGet(y).mem(MemOp.f32Store);
        f.end();
      }
    }
  };

  f.localGet(jb).localSet(j);
  if (cols > 1) {
    f.block().loop();
    f.localGet(j).i32Const(cols).op(Op.i32Add).localGet(jEnd).op(Op.i32GtS).brIf(1);
    body(cols);
    f.localGet(j).i32Const(cols).op(Op.i32Add).localSet(j).br(0);
    f.end().end();
  }
  f.block().loop();
  f.localGet(j).localGet(jEnd).op(Op.i32GeS).brIf(1);
  body(1);
  f.localGet(j).i32Const(1).op(Op.i32Add).localSet(j).br(0);
  f.end().end();
  return f;
}

/** dqgemm(desc, j0, nj): for each block of MC rows, each block of JB features, each block of 4 rows: the tile. */
function emitGemm(m: ModuleBuilder, tiles: readonly FunctionBuilder[]): FunctionBuilder {
  const f = m.function({ params: [...DQKERNEL_PARAMS], results: [] }, DQGEMM_EXPORT);
  const [desc, j0, nj] = [0, 1, 2];
  const mRows = f.local(i32), mc = f.local(i32), jbStep = f.local(i32), jEnd = f.local(i32);
  const r0 = f.local(i32), rEnd = f.local(i32), jb = f.local(i32), jn = f.local(i32), rb = f.local(i32), h = f.local(i32);
  field(f, desc, 'm').localSet(mRows);
  field(f, desc, 'mc').localSet(mc);
  field(f, desc, 'jb').localSet(jbStep);
  f.localGet(j0).localGet(nj).op(Op.i32Add).localSet(jEnd);
  f.forRange(r0, () => f.i32Const(0), () => f.localGet(mRows), () => f.localGet(mc), () => {
    f.localGet(r0).localGet(mc).op(Op.i32Add).localTee(rEnd).localGet(mRows).localGet(rEnd).localGet(mRows).op(Op.i32LtS).op(Op.select).localSet(rEnd);
    f.forRange(jb, () => f.localGet(j0), () => f.localGet(jEnd), () => f.localGet(jbStep), () => {
      f.localGet(jEnd).localGet(jb).op(Op.i32Sub).localTee(jn).localGet(jbStep).localGet(jn).localGet(jbStep).op(Op.i32LtS).op(Op.select).localSet(jn);
      f.forRange(rb, () => f.localGet(r0), () => f.localGet(rEnd), 4, () => {
        f.localGet(rEnd).localGet(rb).op(Op.i32Sub).localSet(h);
        // h ≥ 4: the 4-row tile; else the 1-3 row tile of the last block.
        f.localGet(h).i32Const(4).op(Op.i32GeS).if();
        f.localGet(desc).localGet(jb).localGet(jn).localGet(rb).call(tiles[3]!.index);
        f.else();
        f.localGet(h).i32Const(3).op(Op.i32Eq).if();
        f.localGet(desc).localGet(jb).localGet(jn).localGet(rb).call(tiles[2]!.index);
        f.else();
        f.localGet(h).i32Const(2).op(Op.i32Eq).if();
        f.localGet(desc).localGet(jb).localGet(jn).localGet(rb).call(tiles[1]!.index);
        f.else();
        f.localGet(desc).localGet(jb).localGet(jn).localGet(rb).call(tiles[0]!.index);
        f.end().end().end();
      });
    });
  });
  return f;
}
