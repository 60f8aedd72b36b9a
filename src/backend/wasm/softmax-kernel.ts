// The float32 softmax and logSoftmax primitives over contiguous rows, each as one generated function:
//   softmax_rows(out, in, rows, len, inRowStride): out[r·len + j] = e_j / Σ e, e_j = exp(in_j − shift)
//   (logSoftmax)                                    out[r·len + j] = (in_j − shift) − log Σ e
// with shift = the row max, or 0 where that max is ±inf or NaN (like the composite it replaces).
// Three passes per row over data that stays in cache: SIMD max, SIMD exp (transcendental-kernel.ts)
// summed in float64 (softmax stores each e to `out`), then a SIMD divide by the f32-rounded sum
// (logSoftmax: subtract its log, one scalar log per row). The row tail runs the same vector code
// on splatted values, so every element is computed alike; each value is rounded to float32 where
// the composite's kernels would store it, so logSoftmax equals them up to the sum's order.

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport } from './encoder.js';
import { ConstantPool, emitTranscendentalVector } from './transcendental-kernel.js';
import { emitRowTask } from './row-task.js';

const { i32, f32, f64, v128 } = ValType;

export const SOFTMAX_ROWS_EXPORT = 'softmax_rows';
/** softmax_rows' parameters, and its index in the module's row task (row-task.ts). */
export const SOFTMAX_ROWS_PARAMS = [i32, i32, i32, i32, i32] as const;
export const SOFTMAX_ROWS_TASK_INDEX = 0;

/** Moves the high two f32 lanes into the low half, so promote_low can widen them. */
const HIGH_TO_LOW = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];

export type SoftmaxVariant = 'softmax' | 'logSoftmax';

export function buildSoftmaxModule(memory: MemoryImport, variant: SoftmaxVariant = 'softmax'): Uint8Array<ArrayBuffer> {
  const log = variant === 'logSoftmax';
  const m = new ModuleBuilder().named(variant).importMemory(memory);
  const f = m.function({ params: [...SOFTMAX_ROWS_PARAMS], results: [] }, SOFTMAX_ROWS_EXPORT);
  const [out, inp, rows, len, inRowStride] = [0, 1, 2, 3, 4];
  const r = f.local(i32), i = f.local(i32), nVec = f.local(i32), src = f.local(i32), dst = f.local(i32);
  const vmax = f.local(v128), shift = f.local(v128), e = f.local(v128), acc0 = f.local(v128), acc1 = f.local(v128);
  const best = f.local(f32), total = f.local(f64), scalarE = f.local(f32), totals = f.local(v128);
  const pool = ConstantPool.hoist(f, (scratch, p) => {
    emitTranscendentalVector(scratch, 'exp', p);
    if (log) emitTranscendentalVector(scratch, 'log', p);
  });
  const at = (base: number) => f.localGet(base).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);

  f.localGet(len).i32Const(-4).op(Op.i32And).localSet(nVec);
  f.localGet(inp).localSet(src);
  f.localGet(out).localSet(dst);
  f.forRange(r, () => f.i32Const(0), () => f.localGet(rows), 1, () => {
    // Pass 1: the row max. pmax (`vmax < x ? x : vmax`) is one x64 instruction on the loop's
    // dependency chain, where f32x4.max's NaN rules cost V8 about seven; it skips a NaN lane that
    // f32x4.max would propagate, but a row holding NaN comes out all NaN either way (its exp is
    // NaN, and so is the sum every element is divided by).
    f.f32x4Const(-Infinity, -Infinity, -Infinity, -Infinity).localSet(vmax);
    f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
      f.localGet(vmax);
      at(src).simdMem(SimdMemOp.v128Load, 0, 2);
      f.simd(SimdOp.f32x4Pmax).localSet(vmax);
    });
    f.localGet(vmax).simdLane(SimdLaneOp.f32x4ExtractLane, 0);
    for (let lane = 1; lane < 4; lane++) f.localGet(vmax).simdLane(SimdLaneOp.f32x4ExtractLane, lane).op(Op.f32Max);
    f.localSet(best);
    f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
      f.localGet(best);
      at(src).mem(MemOp.f32Load);
      f.op(Op.f32Max).localSet(best);
    });
    // shift = best where best − best == 0 (finite), else 0.
    f.localGet(best).f32Const(0).localGet(best).localGet(best).op(Op.f32Sub).f32Const(0).op(Op.f32Eq).op(Op.select);
    f.simd(SimdOp.f32x4Splat).localSet(shift);
    // Pass 2: e = exp(x − shift) into out, summed in f64.
    f.f32x4Const(0, 0, 0, 0).localTee(acc0).localSet(acc1);
    f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
      at(src).simdMem(SimdMemOp.v128Load, 0, 2).localGet(shift).simd(SimdOp.f32x4Sub);
      emitTranscendentalVector(f, 'exp', pool);
      f.localSet(e);
      if (!log) at(dst).localGet(e).simdMem(SimdMemOp.v128Store, 0, 2);
      f.localGet(acc0).localGet(e).simd(SimdOp.f64x2PromoteLowF32x4).simd(SimdOp.f64x2Add).localSet(acc0);
      f.localGet(acc1).localGet(e).localGet(e).i8x16Shuffle(HIGH_TO_LOW).simd(SimdOp.f64x2PromoteLowF32x4).simd(SimdOp.f64x2Add).localSet(acc1);
    });
    f.localGet(acc0).localGet(acc1).simd(SimdOp.f64x2Add).localTee(acc0).simdLane(SimdLaneOp.f64x2ExtractLane, 0)
      .localGet(acc0).simdLane(SimdLaneOp.f64x2ExtractLane, 1).op(Op.f64Add).localSet(total);
    f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
      at(src).mem(MemOp.f32Load).simd(SimdOp.f32x4Splat).localGet(shift).simd(SimdOp.f32x4Sub);
      emitTranscendentalVector(f, 'exp', pool);
      f.simdLane(SimdLaneOp.f32x4ExtractLane, 0).localSet(scalarE);
      if (!log) at(dst).localGet(scalarE).mem(MemOp.f32Store);
      f.localGet(total).localGet(scalarE).op(Op.f64PromoteF32).op(Op.f64Add).localSet(total);
    });
    if (log) {
      // Pass 3: (x − shift) − log(total), total rounded to f32 and its log as the backend computes it.
      f.localGet(total).op(Op.f32DemoteF64).simd(SimdOp.f32x4Splat);
      emitTranscendentalVector(f, 'log', pool);
      f.localSet(totals);
      f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
        at(dst);
        at(src).simdMem(SimdMemOp.v128Load, 0, 2).localGet(shift).simd(SimdOp.f32x4Sub).localGet(totals).simd(SimdOp.f32x4Sub);
        f.simdMem(SimdMemOp.v128Store, 0, 2);
      });
      f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
        at(dst);
        at(src).mem(MemOp.f32Load).simd(SimdOp.f32x4Splat).localGet(shift).simd(SimdOp.f32x4Sub).localGet(totals).simd(SimdOp.f32x4Sub);
        f.simdLane(SimdLaneOp.f32x4ExtractLane, 0).mem(MemOp.f32Store);
      });
    } else {
      // Pass 3: divide by the f32-rounded total.
      f.localGet(total).op(Op.f32DemoteF64).simd(SimdOp.f32x4Splat).localSet(totals);
      f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
        at(dst);
        at(dst).simdMem(SimdMemOp.v128Load, 0, 2).localGet(totals).simd(SimdOp.f32x4Div);
        f.simdMem(SimdMemOp.v128Store, 0, 2);
      });
      f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
        at(dst);
        at(dst).mem(MemOp.f32Load).localGet(totals).simdLane(SimdLaneOp.f32x4ExtractLane, 0).op(Op.f32Div);
        f.mem(MemOp.f32Store);
      });
    }
    f.localGet(src).localGet(inRowStride).op(Op.i32Add).localSet(src);
    f.localGet(dst).localGet(len).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(dst);
  });
  emitRowTask(m, [{ fn: f, params: SOFTMAX_ROWS_PARAMS }]);
  return m.encode();
}
