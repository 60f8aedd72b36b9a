// Generated row loops of gather and scatterAdd for 4-byte values and int32 indices; the host
// (gather-scatter.ts) walks the outer dimensions and calls one per row. All addresses and strides
// in bytes.
//   gatherRow(n, out, so, index, si, x, sx, axisStride, axisSize) → 1, or 0 at the first index
//       out of [0, axisSize): out[j] = x[j·sx + index[j]·axisStride] (bits copied)
//   checkRow(n, index, si, axisSize) → 1 when every index lies in [0, axisSize)
//   scatterAddRow(n, index, si, src, ss, dst, sd, axisStride): dst[j·sd + index[j]·axisStride] += src[j] (float32)

import { ModuleBuilder, ValType, Op, MemOp, type MemoryImport } from './encoder.js';

const { i32 } = ValType;

export const GATHER_ROW_EXPORT = 'gatherRow';
export const CHECK_ROW_EXPORT = 'checkRow';
export const SCATTER_ADD_ROW_EXPORT = 'scatterAddRow';

export type GatherRow = (n: number, out: number, so: number, index: number, si: number, x: number, sx: number, axisStride: number, axisSize: number) => number;
export type CheckRow = (n: number, index: number, si: number, axisSize: number) => number;
export type ScatterAddRow = (n: number, index: number, si: number, src: number, ss: number, dst: number, sd: number, axisStride: number) => void;

export function buildGatherScatterModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  {
    const f = m.function({ params: Array.from({ length: 9 }, () => i32), results: [i32] }, GATHER_ROW_EXPORT);
    const [n, out, so, index, si, x, sx, axisStride, axisSize] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const j = f.local(i32), v = f.local(i32);
    f.forRange(j, () => f.i32Const(0), () => f.localGet(n), 1, () => {
      f.localGet(index).mem(MemOp.i32Load).localTee(v).localGet(axisSize).op(Op.i32GeU).if().i32Const(0).return().end();
      f.localGet(out).localGet(x).localGet(v).localGet(axisStride).op(Op.i32Mul).op(Op.i32Add).mem(MemOp.i32Load).mem(MemOp.i32Store);
      f.localGet(out).localGet(so).op(Op.i32Add).localSet(out);
      f.localGet(index).localGet(si).op(Op.i32Add).localSet(index);
      f.localGet(x).localGet(sx).op(Op.i32Add).localSet(x);
    });
    f.i32Const(1);
  }
  {
    const f = m.function({ params: [i32, i32, i32, i32], results: [i32] }, CHECK_ROW_EXPORT);
    const [n, index, si, axisSize] = [0, 1, 2, 3];
    const j = f.local(i32);
    f.forRange(j, () => f.i32Const(0), () => f.localGet(n), 1, () => {
      f.localGet(index).mem(MemOp.i32Load).localGet(axisSize).op(Op.i32GeU).if().i32Const(0).return().end();
      f.localGet(index).localGet(si).op(Op.i32Add).localSet(index);
    });
    f.i32Const(1);
  }
  {
    const f = m.function({ params: Array.from({ length: 8 }, () => i32), results: [] }, SCATTER_ADD_ROW_EXPORT);
    const [n, index, si, src, ss, dst, sd, axisStride] = [0, 1, 2, 3, 4, 5, 6, 7];
    const j = f.local(i32), at = f.local(i32);
    f.forRange(j, () => f.i32Const(0), () => f.localGet(n), 1, () => {
      f.localGet(dst).localGet(index).mem(MemOp.i32Load).localGet(axisStride).op(Op.i32Mul).op(Op.i32Add).localSet(at);
      f.localGet(at).localGet(at).mem(MemOp.f32Load).localGet(src).mem(MemOp.f32Load).op(Op.f32Add).mem(MemOp.f32Store);
      f.localGet(index).localGet(si).op(Op.i32Add).localSet(index);
      f.localGet(src).localGet(ss).op(Op.i32Add).localSet(src);
      f.localGet(dst).localGet(sd).op(Op.i32Add).localSet(dst);
    });
  }
  return m.encode();
}
