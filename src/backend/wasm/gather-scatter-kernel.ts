// Generated row loops of gather and scatterAdd for 4-byte values and int32 indices; the host
// (gather-scatter.ts) walks the outer dimensions and calls one per row. All addresses and strides
// in bytes.
//   gatherRow(n, out, so, index, si, x, sx, axisStride, axisSize) → 1, or 0 at the first index
//       out of [0, axisSize): out[j] = x[j·sx + index[j]·axisStride] (bits copied)
//   checkRow(n, index, si, axisSize) → 1 when every index lies in [0, axisSize)
//   scatterAddRow(n, index, si, src, ss, dst, sd, axisStride): dst[j·sd + index[j]·axisStride] += src[j] (float32)
//   task(unit, params, thread): the thread pool's entry (threads.ts). A job is a list of rows,
//       each a descriptor of three byte addresses, cut into units of consecutive rows; every
//       row runs through the same row loop as above, so a split job computes what one call per
//       row would. The host (gather-scatter.ts) cuts scatter-adds so that no two units write one
//       element. Parameter block (i32 words, GatherScatterParam) and unit records (i32 words,
//       GatherScatterUnit) are in the heap.

import { ModuleBuilder, ValType, Op, MemOp, type MemoryImport } from './encoder.js';

const { i32 } = ValType;

export const GATHER_ROW_EXPORT = 'gatherRow';
export const CHECK_ROW_EXPORT = 'checkRow';
export const SCATTER_ADD_ROW_EXPORT = 'scatterAddRow';

/** Word offsets of a task's parameter block. Addresses and strides in bytes. */
export const GatherScatterParam = {
  /** 0: gather (rows = out, index, x); 1: scatterAdd (rows = index, src, dst), both checking each index. */
  mode: 0,
  axisStride: 1,
  axisSize: 2,
  /** Row descriptors: three i32 byte addresses each (the operands' first elements). */
  rows: 3,
  /** Unit records (GatherScatterUnit). */
  units: 4,
} as const;
export const GATHER_SCATTER_PARAM_WORDS = 8;
/** Word offsets of a unit record. */
export const GatherScatterUnit = {
  firstRow: 0,
  rowCount: 1,
  /** Byte range [zeroFrom, zeroTo) set to zero before the rows run (empty: nothing). */
  zeroFrom: 2,
  zeroTo: 3,
  /** Written by the task: 1, or 0 when an index was out of range. */
  status: 4,
  rowLength: 5,
  /** Inner byte strides of the rows' three operands. */
  strides: 6,
} as const;
export const GATHER_SCATTER_UNIT_WORDS = 9;
export const GatherScatterMode = { gather: 0, scatterAdd: 1 } as const;

export type GatherRow = (n: number, out: number, so: number, index: number, si: number, x: number, sx: number, axisStride: number, axisSize: number) => number;
export type CheckRow = (n: number, index: number, si: number, axisSize: number) => number;
export type ScatterAddRow = (n: number, index: number, si: number, src: number, ss: number, dst: number, sd: number, axisStride: number) => void;

export function buildGatherScatterModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  let gatherRowIndex: number;
  {
    const f = m.function({ params: Array.from({ length: 9 }, () => i32), results: [i32] }, GATHER_ROW_EXPORT);
    gatherRowIndex = f.index;
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
  // scatterAddRow that stops at the first index out of range (→ 0): the task's scatter-add checks
  // as it goes, since its output is a fresh buffer that the caller discards on failure.
  const checkedScatterAddRow = (() => {
    const f = m.function({ params: Array.from({ length: 9 }, () => i32), results: [i32] });
    const [n, index, si, src, ss, dst, sd, axisStride, axisSize] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const j = f.local(i32), v = f.local(i32), at = f.local(i32);
    f.forRange(j, () => f.i32Const(0), () => f.localGet(n), 1, () => {
      f.localGet(index).mem(MemOp.i32Load).localTee(v).localGet(axisSize).op(Op.i32GeU).if().i32Const(0).return().end();
      f.localGet(dst).localGet(v).localGet(axisStride).op(Op.i32Mul).op(Op.i32Add).localSet(at);
      f.localGet(at).localGet(at).mem(MemOp.f32Load).localGet(src).mem(MemOp.f32Load).op(Op.f32Add).mem(MemOp.f32Store);
      f.localGet(index).localGet(si).op(Op.i32Add).localSet(index);
      f.localGet(src).localGet(ss).op(Op.i32Add).localSet(src);
      f.localGet(dst).localGet(sd).op(Op.i32Add).localSet(dst);
    });
    f.i32Const(1);
    return f.index;
  })();
  {
    const f = m.function({ params: [i32, i32, i32], results: [] }, 'task');
    const [unit, params] = [0, 1];
    const local = () => f.local(i32);
    const [u, row, rowsLeft, zeroFrom, zeroTo, ok] = [local(), local(), local(), local(), local(), local()];
    const param = (word: number) => { const l = local(); f.localGet(params).mem(MemOp.i32Load, word * 4).localSet(l); return l; };
    const mode = param(GatherScatterParam.mode);
    const axisStride = param(GatherScatterParam.axisStride), axisSize = param(GatherScatterParam.axisSize);
    const rows = param(GatherScatterParam.rows), units = param(GatherScatterParam.units);
    const W = GATHER_SCATTER_UNIT_WORDS * 4;
    f.localGet(units).localGet(unit).i32Const(W).op(Op.i32Mul).op(Op.i32Add).localSet(u);
    const field = (word: number) => { const l = local(); f.localGet(u).mem(MemOp.i32Load, word * 4).localSet(l); return l; };
    const n = field(GatherScatterUnit.rowLength);
    const [s0, s1, s2] = [0, 1, 2].map((i) => field(GatherScatterUnit.strides + i)) as [number, number, number];
    f.localGet(u).mem(MemOp.i32Load, 4 * GatherScatterUnit.zeroFrom).localSet(zeroFrom);
    f.localGet(u).mem(MemOp.i32Load, 4 * GatherScatterUnit.zeroTo).localSet(zeroTo);
    f.localGet(zeroTo).localGet(zeroFrom).op(Op.i32GtU).if();
    f.localGet(zeroFrom).i32Const(0).localGet(zeroTo).localGet(zeroFrom).op(Op.i32Sub).memoryFill();
    f.end();
    // row = the first descriptor's address; rowsLeft = the unit's row count.
    f.localGet(rows).localGet(u).mem(MemOp.i32Load, 4 * GatherScatterUnit.firstRow).i32Const(12).op(Op.i32Mul).op(Op.i32Add).localSet(row);
    f.localGet(u).mem(MemOp.i32Load, 4 * GatherScatterUnit.rowCount).localSet(rowsLeft);
    f.i32Const(1).localSet(ok);
    f.block().loop();
    f.localGet(rowsLeft).op(Op.i32Eqz).brIf(1);
    const operand = (k: number) => f.localGet(row).mem(MemOp.i32Load, 4 * k);
    const args = () => {
      f.localGet(n); operand(0); f.localGet(s0); operand(1); f.localGet(s1); operand(2); f.localGet(s2);
      f.localGet(axisStride).localGet(axisSize);
    };
    f.localGet(mode).if();
    args(); f.call(checkedScatterAddRow).localSet(ok);
    f.else();
    args(); f.call(gatherRowIndex).localSet(ok);
    f.end();
    f.localGet(ok).op(Op.i32Eqz).brIf(1);
    f.localGet(row).i32Const(12).op(Op.i32Add).localSet(row);
    f.localGet(rowsLeft).i32Const(1).op(Op.i32Sub).localSet(rowsLeft);
    f.br(0);
    f.end().end();
    f.localGet(u).localGet(ok).mem(MemOp.i32Store, 4 * GatherScatterUnit.status);
  }
  return m.encode();
}
