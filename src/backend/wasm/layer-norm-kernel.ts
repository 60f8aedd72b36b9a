// The float32 layerNorm primitives over contiguous rows, as one generated function:
//   layer_norm_rows(out, in, rows, len, inRowStride, eps, rstdOnly)
// per row: mean = Σx/len and var = Σ(x − mean)²/len accumulated in float64 (two SIMD passes over
// a row that stays in cache, as the composite computes them), rstd = 1/sqrt(var + eps); then
// either out[r] = rstd (layerNormRstd) or out[r·len + j] = (x_j − mean)·rstd formed in float64 and
// rounded once (layerNormCore). Each f32x4 is widened as two f64x2 (low and high lane pairs).

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport, type FunctionBuilder } from './encoder.js';

const { i32, f64, v128 } = ValType;

export const LAYER_NORM_ROWS_EXPORT = 'layer_norm_rows';

/** Moves the high two f32 lanes into the low half, so promote_low can widen them. */
const HIGH_TO_LOW = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
/** The low halves (two f32 each) of two demoted f64x2 vectors, as one f32x4. */
const JOIN_LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

export function buildLayerNormModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  const f = m.function({ params: [i32, i32, i32, i32, i32, f64, i32], results: [] }, LAYER_NORM_ROWS_EXPORT);
  const [out, inp, rows, len, inRowStride, eps, rstdOnly] = [0, 1, 2, 3, 4, 5, 6];
  const r = f.local(i32), i = f.local(i32), nVec = f.local(i32), src = f.local(i32), dst = f.local(i32);
  const x = f.local(v128), centered = f.local(v128), acc0 = f.local(v128), acc1 = f.local(v128), meanV = f.local(v128), rstdV = f.local(v128);
  const total = f.local(f64), mean = f.local(f64), rstd = f.local(f64), d = f.local(f64), length = f.local(f64);
  const at = (base: number) => f.localGet(base).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
  /** Pushes the low (or high) two lanes of x widened to f64x2. */
  const widened = (g: FunctionBuilder, high: boolean) => {
    g.localGet(x);
    if (high) g.localGet(x).i8x16Shuffle(HIGH_TO_LOW);
    g.simd(SimdOp.f64x2PromoteLowF32x4);
  };
  /** total = the four lanes of acc0 + acc1. */
  const reduceAccumulators = () => {
    f.localGet(acc0).localGet(acc1).simd(SimdOp.f64x2Add).localTee(acc0).simdLane(SimdLaneOp.f64x2ExtractLane, 0)
      .localGet(acc0).simdLane(SimdLaneOp.f64x2ExtractLane, 1).op(Op.f64Add).localSet(total);
  };

  f.localGet(len).i32Const(-4).op(Op.i32And).localSet(nVec);
  f.localGet(len).op(Op.f64ConvertI32U).localSet(length);
  f.localGet(inp).localSet(src);
  f.localGet(out).localSet(dst);
  f.forRange(r, () => f.i32Const(0), () => f.localGet(rows), 1, () => {
    // Pass 1: Σx.
    f.f32x4Const(0, 0, 0, 0).localTee(acc0).localSet(acc1);
    f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
      at(src).simdMem(SimdMemOp.v128Load, 0, 2).localSet(x);
      f.localGet(acc0); widened(f, false); f.simd(SimdOp.f64x2Add).localSet(acc0);
      f.localGet(acc1); widened(f, true); f.simd(SimdOp.f64x2Add).localSet(acc1);
    });
    reduceAccumulators();
    f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
      f.localGet(total);
      at(src).mem(MemOp.f32Load).op(Op.f64PromoteF32).op(Op.f64Add).localSet(total);
    });
    f.localGet(total).localGet(length).op(Op.f64Div).localTee(mean).simd(SimdOp.f64x2Splat).localSet(meanV);
    // Pass 2: Σ(x − mean)².
    f.f32x4Const(0, 0, 0, 0).localTee(acc0).localSet(acc1);
    f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
      at(src).simdMem(SimdMemOp.v128Load, 0, 2).localSet(x);
      for (const [acc, high] of [[acc0, false], [acc1, true]] as const) {
        widened(f, high);
        f.localGet(meanV).simd(SimdOp.f64x2Sub).localTee(centered).localGet(centered).simd(SimdOp.f64x2Mul);
        f.localGet(acc).simd(SimdOp.f64x2Add).localSet(acc);
      }
    });
    reduceAccumulators();
    f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
      at(src).mem(MemOp.f32Load).op(Op.f64PromoteF32).localGet(mean).op(Op.f64Sub).localTee(d);
      f.localGet(d).op(Op.f64Mul).localGet(total).op(Op.f64Add).localSet(total);
    });
    f.f64Const(1).localGet(total).localGet(length).op(Op.f64Div).localGet(eps).op(Op.f64Add).op(Op.f64Sqrt).op(Op.f64Div).localSet(rstd);
    f.localGet(rstdOnly).if();
    f.localGet(out).localGet(r).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localGet(rstd).op(Op.f32DemoteF64).mem(MemOp.f32Store);
    f.else();
    // Pass 3: (x − mean)·rstd in f64, rounded once.
    f.localGet(rstd).simd(SimdOp.f64x2Splat).localSet(rstdV);
    f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
      at(dst);
      at(src).simdMem(SimdMemOp.v128Load, 0, 2).localSet(x);
      for (const high of [false, true]) {
        widened(f, high);
        f.localGet(meanV).simd(SimdOp.f64x2Sub).localGet(rstdV).simd(SimdOp.f64x2Mul).simd(SimdOp.f32x4DemoteF64x2Zero);
      }
      f.i8x16Shuffle(JOIN_LOW_HALVES).simdMem(SimdMemOp.v128Store, 0, 2);
    });
    f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
      at(dst);
      at(src).mem(MemOp.f32Load).op(Op.f64PromoteF32).localGet(mean).op(Op.f64Sub).localGet(rstd).op(Op.f64Mul).op(Op.f32DemoteF64);
      f.mem(MemOp.f32Store);
    });
    f.localGet(dst).localGet(len).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(dst);
    f.end();
    f.localGet(src).localGet(inRowStride).op(Op.i32Add).localSet(src);
  });
  return m.encode();
}
