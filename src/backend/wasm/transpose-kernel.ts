// A generated transposing copy of 4-byte elements, for the thread pool:
//   dst[o, i, j] = src[o, j, i]   (o < outer, i < P, j < Q)
// at byte addresses dst + o·dOuter + i·dP + 4j and src + o·sOuter + j·sQ + 4i: rows of dst and
// columns of src are contiguous. Blocks of 4x4 move as four v128 loads, eight shuffles and four
// v128 stores (a strided element-by-element copy moves one element per load and store); the
// edges of P and Q that do not fill a block move element by element. Bits are copied, so any
// 4-byte dtype is served exactly.
//
// task(unit, params, thread): unit = (o, chunk of i) with `chunks` chunks of `iChunk` rows (a
// multiple of 4) per o. Parameter block: i32 words (TransposeParam), addresses and strides in bytes.

import { ModuleBuilder, ValType, Op, MemOp, SimdMemOp, type MemoryImport } from './encoder.js';

const { i32 } = ValType;

export const TransposeParam = {
  dst: 0, src: 1, p: 2, q: 3, dP: 4, sQ: 5, dOuter: 6, sOuter: 7, chunks: 8, iChunk: 9,
} as const;
export const TRANSPOSE_PARAM_WORDS = 16;

/** Byte lanes of i8x16.shuffle picking f32 lanes `lanes` of concat(a, b) (b's lanes are 4..7). */
function f32Lanes(...lanes: number[]): number[] {
  return lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
}

export function buildTransposeModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  const f = m.function({ params: [i32, i32, i32], results: [] }, 'task');
  const unit = 0, params = 1;
  const local = () => f.local(i32);
  const param = (word: number) => { const l = local(); f.localGet(params).mem(MemOp.i32Load, word * 4).localSet(l); return l; };
  const P = TransposeParam;
  const [dst, src, p, q, dP, sQ] = [param(P.dst), param(P.src), param(P.p), param(P.q), param(P.dP), param(P.sQ)];
  const [dOuter, sOuter, chunks, iChunk] = [param(P.dOuter), param(P.sOuter), param(P.chunks), param(P.iChunk)];
  const [o, c, i, i1, j, q4, dRow, sCol, d, s] = Array.from({ length: 10 }, local) as
    [number, number, number, number, number, number, number, number, number, number];
  const rows = [0, 1, 2, 3].map(() => f.local(ValType.v128));
  const mixed = [0, 1, 2, 3].map(() => f.local(ValType.v128));

  f.localGet(unit).localGet(chunks).op(Op.i32DivU).localSet(o);
  f.localGet(unit).localGet(chunks).op(Op.i32RemU).localSet(c);
  // dst/src of row o; [i, i1) = this unit's rows of dst.
  f.localGet(dst).localGet(o).localGet(dOuter).op(Op.i32Mul).op(Op.i32Add).localSet(dst);
  f.localGet(src).localGet(o).localGet(sOuter).op(Op.i32Mul).op(Op.i32Add).localSet(src);
  f.localGet(c).localGet(iChunk).op(Op.i32Mul).localSet(i);
  f.localGet(i).localGet(iChunk).op(Op.i32Add).localTee(i1).localGet(p).op(Op.i32GtU).if().localGet(p).localSet(i1).end();
  f.localGet(q).i32Const(-4).op(Op.i32And).localSet(q4);

  /** dst[i', j'] = src[j', i'] for one element at the current d (dst) and s (src) addresses. */
  const copyElement = () => { f.localGet(d).localGet(s).mem(MemOp.i32Load).mem(MemOp.i32Store); };

  // Blocks of four rows of dst.
  f.block().loop();
  f.localGet(i).i32Const(4).op(Op.i32Add).localGet(i1).op(Op.i32GtU).brIf(1);
  {
    f.localGet(dst).localGet(i).localGet(dP).op(Op.i32Mul).op(Op.i32Add).localSet(dRow); // &dst[i, 0]
    f.localGet(src).localGet(i).i32Const(4).op(Op.i32Mul).op(Op.i32Add).localSet(sCol); // &src[0, i]
    f.forRange(j, () => f.i32Const(0), () => f.localGet(q4), 4, () => {
      // rows[k] = src[j + k, i .. i + 3]
      rows.forEach((r, k) => {
        f.localGet(sCol).localGet(j).i32Const(k).op(Op.i32Add).localGet(sQ).op(Op.i32Mul).op(Op.i32Add).simdMem(SimdMemOp.v128Load, 0, 0).localSet(r);
      });
      f.localGet(rows[0]!).localGet(rows[1]!).i8x16Shuffle(f32Lanes(0, 4, 1, 5)).localSet(mixed[0]!);
      f.localGet(rows[0]!).localGet(rows[1]!).i8x16Shuffle(f32Lanes(2, 6, 3, 7)).localSet(mixed[1]!);
      f.localGet(rows[2]!).localGet(rows[3]!).i8x16Shuffle(f32Lanes(0, 4, 1, 5)).localSet(mixed[2]!);
      f.localGet(rows[2]!).localGet(rows[3]!).i8x16Shuffle(f32Lanes(2, 6, 3, 7)).localSet(mixed[3]!);
      // dst[i + k, j .. j + 3] = column k of the block
      const columns: [number, number, number[]][] = [
        [0, 2, f32Lanes(0, 1, 4, 5)], [0, 2, f32Lanes(2, 3, 6, 7)], [1, 3, f32Lanes(0, 1, 4, 5)], [1, 3, f32Lanes(2, 3, 6, 7)],
      ];
      columns.forEach(([a, b, lanes], k) => {
        f.localGet(dRow).localGet(dP).i32Const(k).op(Op.i32Mul).op(Op.i32Add).localGet(j).i32Const(4).op(Op.i32Mul).op(Op.i32Add);
        f.localGet(mixed[a]!).localGet(mixed[b]!).i8x16Shuffle(lanes).simdMem(SimdMemOp.v128Store, 0, 0);
      });
    });
    // The columns past the last full block, element by element.
    f.forRange(j, () => f.localGet(q4), () => f.localGet(q), 1, () => {
      for (let k = 0; k < 4; k++) {
        f.localGet(dRow).localGet(dP).i32Const(k).op(Op.i32Mul).op(Op.i32Add).localGet(j).i32Const(4).op(Op.i32Mul).op(Op.i32Add).localSet(d);
        f.localGet(sCol).localGet(j).localGet(sQ).op(Op.i32Mul).op(Op.i32Add).i32Const(4 * k).op(Op.i32Add).localSet(s);
        copyElement();
      }
    });
    f.localGet(i).i32Const(4).op(Op.i32Add).localSet(i);
  }
  f.br(0).end().end();
  // The rows past the last full block, element by element.
  f.forRange(i, () => f.localGet(i), () => f.localGet(i1), 1, () => {
    f.forRange(j, () => f.i32Const(0), () => f.localGet(q), 1, () => {
      f.localGet(dst).localGet(i).localGet(dP).op(Op.i32Mul).op(Op.i32Add).localGet(j).i32Const(4).op(Op.i32Mul).op(Op.i32Add).localSet(d);
      f.localGet(src).localGet(j).localGet(sQ).op(Op.i32Mul).op(Op.i32Add).localGet(i).i32Const(4).op(Op.i32Mul).op(Op.i32Add).localSet(s);
      copyElement();
    });
  });
  return m.encode();
}
