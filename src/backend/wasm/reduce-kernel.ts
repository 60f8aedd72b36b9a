// Generated f32 SIMD reductions (sum, max, min) in two shapes:
//   rows_<op>(out, in, rows, len, rowStride): out[r] = reduce(in[r·rowStride + 0..len))  (contiguous rows)
//   cols_<op>(out, in, cols, count, step):    out[j] = reduce_b(in[b·step + j])          (contiguous columns)
// Byte addresses and byte strides. `sum` accumulates in f64 like the reference backend (which adds
// in JS doubles): columns add in the same order, so they match it exactly; rows add four
// interleaved f64 partial sums, which rounds to the same f32 except in rare ties. max/min
// propagate NaN like the reference.

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport, type FunctionBuilder } from './encoder.js';
import { emitRowTask } from './row-task.js';

const { i32, f32, f64, v128 } = ValType;

export const SIMD_REDUCE_OPS = ['sum', 'max', 'min'] as const;
export type SimdReduceOp = (typeof SIMD_REDUCE_OPS)[number];

/** Moves the high two f32 lanes into the low half, so promote_low can widen them. */
const HIGH_TO_LOW = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];

/** Both kernel shapes take (out, in, a, b, c) as i32. */
export const REDUCE_KERNEL_PARAMS = [i32, i32, i32, i32, i32] as const;

/** The index of `rows_<op>` or `cols_<op>` in the module's row task (row-task.ts). */
export function reduceTaskIndex(kind: 'rows' | 'cols', op: SimdReduceOp): number {
  return 2 * SIMD_REDUCE_OPS.indexOf(op) + (kind === 'rows' ? 0 : 1);
}

export function buildReduceModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().named('reduce').importMemory(memory);
  const kernels: FunctionBuilder[] = [];
  for (const op of SIMD_REDUCE_OPS) kernels.push(emitRows(m, op), emitCols(m, op)); // reduceTaskIndex's order
  emitRowTask(m, kernels.map((fn) => ({ fn, params: REDUCE_KERNEL_PARAMS })));
  return m.encode();
}

/** Pushes f32x4 at address `addr` widened into two f64x2 added to acc0, acc1. */
function addWidened(f: FunctionBuilder, addr: () => void, acc0: number, acc1: number, tmp: number): void {
  addr();
  f.simdMem(SimdMemOp.v128Load, 0, 2).localSet(tmp);
  f.localGet(acc0).localGet(tmp).simd(SimdOp.f64x2PromoteLowF32x4).simd(SimdOp.f64x2Add).localSet(acc0);
  f.localGet(acc1).localGet(tmp).localGet(tmp).i8x16Shuffle(HIGH_TO_LOW).simd(SimdOp.f64x2PromoteLowF32x4)
    .simd(SimdOp.f64x2Add).localSet(acc1);
}

function emitRows(m: ModuleBuilder, op: SimdReduceOp): FunctionBuilder {
  const f = m.function({ params: [...REDUCE_KERNEL_PARAMS], results: [] }, `rows_${op}`);
  const [out, inp, rows, len, rowStride] = [0, 1, 2, 3, 4];
  const r = f.local(i32), i = f.local(i32), nVec = f.local(i32), row = f.local(i32);
  const acc0 = f.local(v128), acc1 = f.local(v128), tmp = f.local(v128);
  const total = f.local(f64), best = f.local(f32);
  const at = () => f.localGet(row).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
  f.localGet(len).i32Const(-4).op(Op.i32And).localSet(nVec);
  f.localGet(inp).localSet(row);
  f.forRange(r, () => f.i32Const(0), () => f.localGet(rows), 1, () => {
    if (op === 'sum') {
      f.f32x4Const(0, 0, 0, 0).localTee(acc0).localSet(acc1);
      f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => addWidened(f, at, acc0, acc1, tmp));
      f.localGet(acc0).localGet(acc1).simd(SimdOp.f64x2Add).localTee(acc0).simdLane(SimdLaneOp.f64x2ExtractLane, 0)
        .localGet(acc0).simdLane(SimdLaneOp.f64x2ExtractLane, 1).op(Op.f64Add).localSet(total);
      f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
        f.localGet(total);
        at();
        f.mem(MemOp.f32Load).op(Op.f64PromoteF32).op(Op.f64Add).localSet(total);
      });
      f.localGet(out).localGet(r).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localGet(total).op(Op.f32DemoteF64).mem(MemOp.f32Store);
    } else {
      const start = op === 'max' ? -Infinity : Infinity;
      const vop = op === 'max' ? SimdOp.f32x4Max : SimdOp.f32x4Min;
      const sop = op === 'max' ? Op.f32Max : Op.f32Min;
      f.f32x4Const(start, start, start, start).localSet(acc0);
      f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
        f.localGet(acc0);
        at();
        f.simdMem(SimdMemOp.v128Load, 0, 2).simd(vop).localSet(acc0);
      });
      f.localGet(acc0).simdLane(SimdLaneOp.f32x4ExtractLane, 0);
      for (let lane = 1; lane < 4; lane++) f.localGet(acc0).simdLane(SimdLaneOp.f32x4ExtractLane, lane).op(sop);
      f.localSet(best);
      f.forRange(i, () => f.localGet(nVec), () => f.localGet(len), 1, () => {
        f.localGet(best);
        at();
        f.mem(MemOp.f32Load).op(sop).localSet(best);
      });
      f.localGet(out).localGet(r).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localGet(best).mem(MemOp.f32Store);
    }
    f.localGet(row).localGet(rowStride).op(Op.i32Add).localSet(row);
  });
  return f;
}

function emitCols(m: ModuleBuilder, op: SimdReduceOp): FunctionBuilder {
  const f = m.function({ params: [...REDUCE_KERNEL_PARAMS], results: [] }, `cols_${op}`);
  const [out, inp, cols, count, step] = [0, 1, 2, 3, 4];
  const j = f.local(i32), b = f.local(i32), nVec = f.local(i32), p = f.local(i32);
  const acc0 = f.local(v128), acc1 = f.local(v128), tmp = f.local(v128);
  const total = f.local(f64), best = f.local(f32);
  const colAddr = (base: number) => f.localGet(base).localGet(j).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
  f.localGet(cols).i32Const(-4).op(Op.i32And).localSet(nVec);
  let start4: () => void = () => f.i32Const(0);
  if (op === 'sum') {
    // Sixteen columns at a time (a cache line per row, eight independent f64x2 chains instead of
    // one f64 add latency per step); each column still adds its values in b order.
    const n16 = f.local(i32);
    const accs = Array.from({ length: 8 }, () => f.local(v128));
    f.localGet(cols).i32Const(-16).op(Op.i32And).localSet(n16);
    f.forRange(j, () => f.i32Const(0), () => f.localGet(n16), 16, () => {
      colAddr(inp).localSet(p);
      f.f32x4Const(0, 0, 0, 0);
      for (const a of accs) f.localTee(a);
      f.op(Op.drop);
      f.forRange(b, () => f.i32Const(0), () => f.localGet(count), 1, () => {
        for (let q = 0; q < 4; q++) addWidened(f, () => f.localGet(p).i32Const(16 * q).op(Op.i32Add), accs[2 * q]!, accs[2 * q + 1]!, tmp);
        f.localGet(p).localGet(step).op(Op.i32Add).localSet(p);
      });
      accs.forEach((a, k) => {
        for (let lane = 0; lane < 2; lane++) {
          colAddr(out).localGet(a).simdLane(SimdLaneOp.f64x2ExtractLane, lane).op(Op.f32DemoteF64).mem(MemOp.f32Store, 8 * k + 4 * lane);
        }
      });
    });
    start4 = () => f.localGet(n16);
  }
  // Four columns at a time, walking down the b axis.
  f.forRange(j, start4, () => f.localGet(nVec), 4, () => {
    colAddr(inp).localSet(p);
    if (op === 'sum') {
      f.f32x4Const(0, 0, 0, 0).localTee(acc0).localSet(acc1);
      f.forRange(b, () => f.i32Const(0), () => f.localGet(count), 1, () => {
        addWidened(f, () => f.localGet(p), acc0, acc1, tmp);
        f.localGet(p).localGet(step).op(Op.i32Add).localSet(p);
      });
      colAddr(out).localGet(acc0).simdLane(SimdLaneOp.f64x2ExtractLane, 0).op(Op.f32DemoteF64).mem(MemOp.f32Store, 0);
      colAddr(out).localGet(acc0).simdLane(SimdLaneOp.f64x2ExtractLane, 1).op(Op.f32DemoteF64).mem(MemOp.f32Store, 4);
      colAddr(out).localGet(acc1).simdLane(SimdLaneOp.f64x2ExtractLane, 0).op(Op.f32DemoteF64).mem(MemOp.f32Store, 8);
      colAddr(out).localGet(acc1).simdLane(SimdLaneOp.f64x2ExtractLane, 1).op(Op.f32DemoteF64).mem(MemOp.f32Store, 12);
    } else {
      const start = op === 'max' ? -Infinity : Infinity;
      f.f32x4Const(start, start, start, start).localSet(acc0);
      f.forRange(b, () => f.i32Const(0), () => f.localGet(count), 1, () => {
        f.localGet(acc0).localGet(p).simdMem(SimdMemOp.v128Load, 0, 2).simd(op === 'max' ? SimdOp.f32x4Max : SimdOp.f32x4Min).localSet(acc0);
        f.localGet(p).localGet(step).op(Op.i32Add).localSet(p);
      });
      colAddr(out).localGet(acc0).simdMem(SimdMemOp.v128Store, 0, 2);
    }
  });
  // Remaining columns one at a time.
  f.forRange(j, () => f.localGet(nVec), () => f.localGet(cols), 1, () => {
    colAddr(inp).localSet(p);
    if (op === 'sum') f.f64Const(0).localSet(total);
    else f.f32Const(op === 'max' ? -Infinity : Infinity).localSet(best);
    f.forRange(b, () => f.i32Const(0), () => f.localGet(count), 1, () => {
      if (op === 'sum') f.localGet(total).localGet(p).mem(MemOp.f32Load).op(Op.f64PromoteF32).op(Op.f64Add).localSet(total);
      else f.localGet(best).localGet(p).mem(MemOp.f32Load).op(op === 'max' ? Op.f32Max : Op.f32Min).localSet(best);
      f.localGet(p).localGet(step).op(Op.i32Add).localSet(p);
    });
    colAddr(out);
    if (op === 'sum') f.localGet(total).op(Op.f32DemoteF64);
    else f.localGet(best);
    f.mem(MemOp.f32Store);
  });
  return f;
}
