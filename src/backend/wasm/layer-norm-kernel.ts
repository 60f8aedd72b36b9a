// The float32 layerNorm primitives over contiguous rows, as two generated functions:
//   layer_norm_rows(out, in, rows, len, inRowStride, eps, rstdOnly)
//   layer_norm_grad_rows(out, x, g, rows, len, xRowStride, gRowStride, eps)
// Per row: mean = Σx/len and var = Σ(x − mean)²/len accumulated in float64 (two SIMD passes over
// a row that stays in cache, as the composite computes them), rstd = 1/sqrt(var + eps). Then
// layer_norm_rows writes either out[r] = rstd (layerNormRstd) or (x_j − mean)·rstd (layerNormCore);
// layer_norm_grad_rows sums g and g·y (y = (x − mean)·rstd) and writes rstd·(g − mean(g) − y·mean(g·y))
// (layerNormCoreGrad). Every value is formed in float64 and rounded once; each f32x4 is widened
// as two f64x2 (low and high lane pairs).

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport, type FunctionBuilder } from './encoder.js';
import { emitRowTask } from './row-task.js';

const { i32, f64, v128 } = ValType;

export const LAYER_NORM_ROWS_EXPORT = 'layer_norm_rows';
export const LAYER_NORM_GRAD_ROWS_EXPORT = 'layer_norm_grad_rows';
/** Each function's parameters, and its index in the module's row task (row-task.ts). */
export const LAYER_NORM_ROWS_PARAMS = [i32, i32, i32, i32, i32, f64, i32] as const;
export const LAYER_NORM_GRAD_ROWS_PARAMS = [i32, i32, i32, i32, i32, i32, i32, f64] as const;
export const LAYER_NORM_ROWS_TASK_INDEX = 0;
export const LAYER_NORM_GRAD_ROWS_TASK_INDEX = 1;

/** Moves the high two f32 lanes into the low half, so promote_low can widen them. */
const HIGH_TO_LOW = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
/** The low halves (two f32 each) of two demoted f64x2 vectors, as one f32x4. */
const JOIN_LOW_HALVES = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];

/** The locals and helpers both functions share. */
class RowCode {
  readonly i: number; readonly nVec: number; readonly length: number;
  readonly x: number; readonly centered: number; readonly acc0: number; readonly acc1: number;
  readonly meanV: number; readonly rstdV: number;
  readonly total: number; readonly mean: number; readonly rstd: number; readonly d: number;

  constructor(readonly f: FunctionBuilder, private readonly len: number, private readonly eps: number) {
    this.i = f.local(i32); this.nVec = f.local(i32);
    this.x = f.local(v128); this.centered = f.local(v128); this.acc0 = f.local(v128); this.acc1 = f.local(v128);
    this.meanV = f.local(v128); this.rstdV = f.local(v128);
    this.total = f.local(f64); this.mean = f.local(f64); this.rstd = f.local(f64); this.d = f.local(f64); this.length = f.local(f64);
    f.localGet(len).i32Const(-4).op(Op.i32And).localSet(this.nVec);
    f.localGet(len).op(Op.f64ConvertI32U).localSet(this.length);
  }

  /** Pushes the byte address of element i of the row at local `base`. */
  at(base: number): void {
    this.f.localGet(base).localGet(this.i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
  }

  /** Pushes the low (or high) two lanes of the f32x4 in local `v` widened to f64x2. */
  widened(v: number, high: boolean): void {
    this.f.localGet(v);
    if (high) this.f.localGet(v).i8x16Shuffle(HIGH_TO_LOW);
    this.f.simd(SimdOp.f64x2PromoteLowF32x4);
  }

  /** Pushes (widened half of x − mean)·rstd, an f64x2 of y. */
  normalized(high: boolean): void {
    this.widened(this.x, high);
    this.f.localGet(this.meanV).simd(SimdOp.f64x2Sub).localGet(this.rstdV).simd(SimdOp.f64x2Mul);
  }

  /** Zeroes two f64x2 accumulators. */
  clear(a: number, b: number): void {
    this.f.f32x4Const(0, 0, 0, 0).localTee(a).localSet(b);
  }

  /** Pushes the four lanes of a + b summed (f64). */
  lanesSum(a: number, b: number): void {
    const { f } = this;
    f.localGet(a).localGet(b).simd(SimdOp.f64x2Add).localTee(a).simdLane(SimdLaneOp.f64x2ExtractLane, 0)
      .localGet(a).simdLane(SimdLaneOp.f64x2ExtractLane, 1).op(Op.f64Add);
  }

  /** The vector loop over i in [0, nVec) step 4, then the scalar loop over [nVec, len). */
  loops(vector: () => void, scalar: () => void): void {
    this.f.forRange(this.i, () => this.f.i32Const(0), () => this.f.localGet(this.nVec), 4, vector);
    this.f.forRange(this.i, () => this.f.localGet(this.nVec), () => this.f.localGet(this.len), 1, scalar);
  }

  /** mean, rstd (and their f64x2 splats) of the row of x at local `src`. */
  stats(src: number): void {
    const { f } = this;
    // Pass 1: Σx.
    this.clear(this.acc0, this.acc1);
    f.forRange(this.i, () => f.i32Const(0), () => f.localGet(this.nVec), 4, () => {
      this.at(src); f.simdMem(SimdMemOp.v128Load, 0, 2).localSet(this.x);
      f.localGet(this.acc0); this.widened(this.x, false); f.simd(SimdOp.f64x2Add).localSet(this.acc0);
      f.localGet(this.acc1); this.widened(this.x, true); f.simd(SimdOp.f64x2Add).localSet(this.acc1);
    });
    this.lanesSum(this.acc0, this.acc1); f.localSet(this.total);
    f.forRange(this.i, () => f.localGet(this.nVec), () => f.localGet(this.len), 1, () => {
      f.localGet(this.total); this.at(src); f.mem(MemOp.f32Load).op(Op.f64PromoteF32).op(Op.f64Add).localSet(this.total);
    });
    f.localGet(this.total).localGet(this.length).op(Op.f64Div).localTee(this.mean).simd(SimdOp.f64x2Splat).localSet(this.meanV);
    // Pass 2: Σ(x − mean)².
    this.clear(this.acc0, this.acc1);
    f.forRange(this.i, () => f.i32Const(0), () => f.localGet(this.nVec), 4, () => {
      this.at(src); f.simdMem(SimdMemOp.v128Load, 0, 2).localSet(this.x);
      for (const [acc, high] of [[this.acc0, false], [this.acc1, true]] as const) {
        this.widened(this.x, high);
        f.localGet(this.meanV).simd(SimdOp.f64x2Sub).localTee(this.centered).localGet(this.centered).simd(SimdOp.f64x2Mul);
        f.localGet(acc).simd(SimdOp.f64x2Add).localSet(acc);
      }
    });
    this.lanesSum(this.acc0, this.acc1); f.localSet(this.total);
    f.forRange(this.i, () => f.localGet(this.nVec), () => f.localGet(this.len), 1, () => {
      this.at(src); f.mem(MemOp.f32Load).op(Op.f64PromoteF32).localGet(this.mean).op(Op.f64Sub).localTee(this.d);
      f.localGet(this.d).op(Op.f64Mul).localGet(this.total).op(Op.f64Add).localSet(this.total);
    });
    f.f64Const(1).localGet(this.total).localGet(this.length).op(Op.f64Div).localGet(this.eps).op(Op.f64Add).op(Op.f64Sqrt).op(Op.f64Div)
      .localTee(this.rstd).simd(SimdOp.f64x2Splat).localSet(this.rstdV);
  }

  /** Pushes the scalar y = (x − mean)·rstd (f64) of element i of the row at local `src`. */
  scalarNormalized(src: number): void {
    this.at(src);
    this.f.mem(MemOp.f32Load).op(Op.f64PromoteF32).localGet(this.mean).op(Op.f64Sub).localGet(this.rstd).op(Op.f64Mul);
  }
}

function emitRows(m: ModuleBuilder): FunctionBuilder {
  const f = m.function({ params: [...LAYER_NORM_ROWS_PARAMS], results: [] }, LAYER_NORM_ROWS_EXPORT);
  const [out, inp, rows, len, inRowStride, eps, rstdOnly] = [0, 1, 2, 3, 4, 5, 6];
  const r = f.local(i32), src = f.local(i32), dst = f.local(i32);
  const c = new RowCode(f, len, eps);
  f.localGet(inp).localSet(src);
  f.localGet(out).localSet(dst);
  f.forRange(r, () => f.i32Const(0), () => f.localGet(rows), 1, () => {
    c.stats(src);
    f.localGet(rstdOnly).if();
    f.localGet(out).localGet(r).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localGet(c.rstd).op(Op.f32DemoteF64).mem(MemOp.f32Store);
    f.else();
    c.loops(() => {
      c.at(dst);
      c.at(src); f.simdMem(SimdMemOp.v128Load, 0, 2).localSet(c.x);
      c.normalized(false); f.simd(SimdOp.f32x4DemoteF64x2Zero);
      c.normalized(true); f.simd(SimdOp.f32x4DemoteF64x2Zero);
      f.i8x16Shuffle(JOIN_LOW_HALVES).simdMem(SimdMemOp.v128Store, 0, 2);
    }, () => {
      c.at(dst); c.scalarNormalized(src); f.op(Op.f32DemoteF64).mem(MemOp.f32Store);
    });
    f.localGet(dst).localGet(len).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(dst);
    f.end();
    f.localGet(src).localGet(inRowStride).op(Op.i32Add).localSet(src);
  });
  return f;
}

function emitGradRows(m: ModuleBuilder): FunctionBuilder {
  const f = m.function({ params: [...LAYER_NORM_GRAD_ROWS_PARAMS], results: [] }, LAYER_NORM_GRAD_ROWS_EXPORT);
  const [out, xIn, gIn, rows, len, xRowStride, gRowStride, eps] = [0, 1, 2, 3, 4, 5, 6, 7];
  const r = f.local(i32), src = f.local(i32), grad = f.local(i32), dst = f.local(i32);
  const gv = f.local(v128), gs0 = f.local(v128), gs1 = f.local(v128), gMeanV = f.local(v128), dotMeanV = f.local(v128);
  const gTotal = f.local(f64), dot = f.local(f64), gj = f.local(f64);
  const c = new RowCode(f, len, eps);
  f.localGet(xIn).localSet(src);
  f.localGet(gIn).localSet(grad);
  f.localGet(out).localSet(dst);
  f.forRange(r, () => f.i32Const(0), () => f.localGet(rows), 1, () => {
    c.stats(src);
    // Pass 3: Σg (gs0 + gs1) and Σg·y (acc0 + acc1).
    c.clear(gs0, gs1);
    c.clear(c.acc0, c.acc1);
    f.forRange(c.i, () => f.i32Const(0), () => f.localGet(c.nVec), 4, () => {
      c.at(src); f.simdMem(SimdMemOp.v128Load, 0, 2).localSet(c.x);
      c.at(grad); f.simdMem(SimdMemOp.v128Load, 0, 2).localSet(gv);
      for (const [gAcc, acc, high] of [[gs0, c.acc0, false], [gs1, c.acc1, true]] as const) {
        c.widened(gv, high); f.localTee(c.centered).localGet(gAcc).simd(SimdOp.f64x2Add).localSet(gAcc);
        c.normalized(high); f.localGet(c.centered).simd(SimdOp.f64x2Mul).localGet(acc).simd(SimdOp.f64x2Add).localSet(acc);
      }
    });
    c.lanesSum(gs0, gs1); f.localSet(gTotal);
    c.lanesSum(c.acc0, c.acc1); f.localSet(dot);
    f.forRange(c.i, () => f.localGet(c.nVec), () => f.localGet(len), 1, () => {
      c.at(grad); f.mem(MemOp.f32Load).op(Op.f64PromoteF32).localTee(gj);
      f.localGet(gTotal).op(Op.f64Add).localSet(gTotal);
      f.localGet(gj); c.scalarNormalized(src); f.op(Op.f64Mul).localGet(dot).op(Op.f64Add).localSet(dot);
    });
    f.localGet(gTotal).localGet(c.length).op(Op.f64Div).simd(SimdOp.f64x2Splat).localSet(gMeanV);
    f.localGet(dot).localGet(c.length).op(Op.f64Div).simd(SimdOp.f64x2Splat).localSet(dotMeanV);
    // Pass 4: rstd·(g − mean(g) − y·mean(g·y)).
    c.loops(() => {
      c.at(dst);
      c.at(src); f.simdMem(SimdMemOp.v128Load, 0, 2).localSet(c.x);
      c.at(grad); f.simdMem(SimdMemOp.v128Load, 0, 2).localSet(gv);
      for (const high of [false, true]) {
        c.widened(gv, high); f.localGet(gMeanV).simd(SimdOp.f64x2Sub);
        c.normalized(high); f.localGet(dotMeanV).simd(SimdOp.f64x2Mul).simd(SimdOp.f64x2Sub);
        f.localGet(c.rstdV).simd(SimdOp.f64x2Mul).simd(SimdOp.f32x4DemoteF64x2Zero);
      }
      f.i8x16Shuffle(JOIN_LOW_HALVES).simdMem(SimdMemOp.v128Store, 0, 2);
    }, () => {
      c.at(dst);
      c.at(grad); f.mem(MemOp.f32Load).op(Op.f64PromoteF32).localGet(gMeanV).simdLane(SimdLaneOp.f64x2ExtractLane, 0).op(Op.f64Sub);
      c.scalarNormalized(src); f.localGet(dotMeanV).simdLane(SimdLaneOp.f64x2ExtractLane, 0).op(Op.f64Mul).op(Op.f64Sub);
      f.localGet(c.rstd).op(Op.f64Mul).op(Op.f32DemoteF64).mem(MemOp.f32Store);
    });
    f.localGet(src).localGet(xRowStride).op(Op.i32Add).localSet(src);
    f.localGet(grad).localGet(gRowStride).op(Op.i32Add).localSet(grad);
    f.localGet(dst).localGet(len).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(dst);
  });
  return f;
}

export function buildLayerNormModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().named('layerNorm').importMemory(memory);
  const rows = emitRows(m);
  const gradRows = emitGradRows(m);
  // In task-index order (LAYER_NORM_ROWS_TASK_INDEX, LAYER_NORM_GRAD_ROWS_TASK_INDEX).
  emitRowTask(m, [{ fn: rows, params: LAYER_NORM_ROWS_PARAMS }, { fn: gradRows, params: LAYER_NORM_GRAD_ROWS_PARAMS }]);
  return m.encode();
}
