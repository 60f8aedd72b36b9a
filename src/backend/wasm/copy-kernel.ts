// A generated strided copy of 4-byte elements over up to four dimensions (the innermost ones of
// a collapsed layout), for im2col-shaped copies whose rows are a few elements long:
//   copy4(dst, src, n0, n1, n2, n3, dstStride0…3, srcStride0…3, accumulate)
// Byte addresses and byte strides; n3 is the innermost size. Plain copies move bits (i32), so
// they serve float32 and int32 alike (rows contiguous on both sides as one memory.copy);
// `accumulate` adds as float32 (col2im).

import { ModuleBuilder, ValType, Op, MemOp, type MemoryImport } from './encoder.js';

const { i32 } = ValType;

export const COPY4_EXPORT = 'copy4';

export function buildCopyModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  const f = m.function({ params: Array.from({ length: 15 }, () => i32), results: [] }, COPY4_EXPORT);
  const dst = 0, src = 1;
  const n = [2, 3, 4, 5];
  const ds = [6, 7, 8, 9];
  const ss = [10, 11, 12, 13];
  const accumulate = 14;
  const idx = [f.local(i32), f.local(i32), f.local(i32), f.local(i32)];
  const dp = [f.local(i32), f.local(i32), f.local(i32), f.local(i32)];
  const sp = [f.local(i32), f.local(i32), f.local(i32), f.local(i32)];
  f.localGet(dst).localSet(dp[0]!).localGet(src).localSet(sp[0]!);
  const level = (d: number, body: () => void) => {
    f.forRange(idx[d]!, () => f.i32Const(0), () => f.localGet(n[d]!), 1, () => {
      body();
      f.localGet(dp[d]!).localGet(ds[d]!).op(Op.i32Add).localSet(dp[d]!);
      f.localGet(sp[d]!).localGet(ss[d]!).op(Op.i32Add).localSet(sp[d]!);
    });
  };
  const descend = (d: number) => () => {
    f.localGet(dp[d - 1]!).localSet(dp[d]!).localGet(sp[d - 1]!).localSet(sp[d]!);
  };
  const innermost = (acc: boolean) => () => {
    if (acc) {
      f.localGet(dp[3]!).localGet(dp[3]!).mem(MemOp.f32Load).localGet(sp[3]!).mem(MemOp.f32Load).op(Op.f32Add).mem(MemOp.f32Store);
    } else {
      f.localGet(dp[3]!).localGet(sp[3]!).mem(MemOp.i32Load).mem(MemOp.i32Store);
    }
  };
  // Plain copies of rows contiguous on both sides take memory.copy (a memmove) instead.
  const contiguousRows = f.local(i32);
  f.localGet(ds[3]!).i32Const(4).op(Op.i32Eq).localGet(ss[3]!).i32Const(4).op(Op.i32Eq).op(Op.i32And).localSet(contiguousRows);
  for (const acc of [false, true]) {
    f.localGet(accumulate).i32Const(acc ? 1 : 0).op(Op.i32Eq).if();
    f.localGet(dst).localSet(dp[0]!).localGet(src).localSet(sp[0]!);
    level(0, () => {
      descend(1)();
      level(1, () => {
        descend(2)();
        level(2, () => {
          descend(3)();
          if (acc) {
            level(3, innermost(acc));
          } else {
            f.localGet(contiguousRows).if();
            f.localGet(dp[3]!).localGet(sp[3]!).localGet(n[3]!).i32Const(4).op(Op.i32Mul).memoryCopy();
            f.else();
            level(3, innermost(acc));
            f.end();
          }
        });
      });
    });
    f.end();
  }
  return m.encode();
}
