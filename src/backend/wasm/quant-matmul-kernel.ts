// Generated kernels for weight-only quantized linear layers, y = x · Ŵᵀ + b with Ŵ = (q − zp) · s:
//
//   qgemv(desc, j0, nj)     output features j0..j0+nj of every row of x, straight from the codes:
//                           each 16-byte chunk of codes is widened to float32 once (int8: 16 values;
//                           int4: 32, nibbles split by shifts and re-interleaved by two shuffles)
//                           and multiplied into up to 4 rows of x, accumulated per group, then
//                           scaled: Σ_g s_g · Σ_{k∈g} (q_k − zp_g) · x_k. Reading 1 (int8) or ½ (int4)
//                           byte per weight instead of 4 is what makes it faster than the float
//                           GEMV at small batch, where the weight stream is the bottleneck.
//   qdequant(desc, j0, nj)  rows j0..j0+nj of Ŵ as float32 into a panel (row stride Kp), for large
//                           batches: the host then runs the SGEMM on the panel (compute bound,
//                           where decoding each weight once per batch is cheap).
//
// Both take a descriptor block (QDesc word offsets) and a range of output features, so the host can
// split them over the thread pool through the row task (row-task.ts). A chunk is 16 bytes of codes:
// 16 int8 or 32 int4 elements. A group spans whole chunks; a row whose length is not a multiple of
// the chunk reads up to 15 bytes past its end, which the host makes harmless: x is zero-padded to
// Kp there (garbage code × 0 = 0, and every code decodes to a finite value), and the panel's
// padding columns are never read.

import { ModuleBuilder, FunctionBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type MemoryImport } from './encoder.js';
import { emitRowTask } from './row-task.js';

const { i32, f32, v128 } = ValType;

/** Word offsets of the descriptor's fields (all i32 but where noted). */
export const QDesc = {
  x: 0, m: 1, xStride: 2, out: 3, n: 4,
  w: 5, rowBytes: 6, scales: 7, groups: 8, chunksPerGroup: 9, zeroPoints: 10, scaleRowStride: 11,
  bias: 12, dst: 13, dstFirst: 14, dstStride: 15,
  // A row whose length is not a multiple of the group size ends with a shorter group.
  chunksLastGroup: 16,
} as const;
export const QDESC_WORDS = 17;

export const QGEMV_TASK_INDEX = 0;
export const QDEQUANT_TASK_INDEX = 1;
export const QGEMV_EXPORT = 'qgemv';
export const QDEQUANT_EXPORT = 'qdequant';
export const QKERNEL_PARAMS = [i32, i32, i32] as const;

export interface QuantKernelVariant {
  bits: 4 | 8;
  /** Signed codes (symmetric): sign-extend; unsigned (affine): zero-extend and subtract the zero point. */
  signed: boolean;
  /** relaxed_madd instead of mul + add. */
  fma: boolean;
}

/** Elements of one 16-byte chunk of codes. */
export function chunkElements(bits: 4 | 8): number {
  return bits === 8 ? 16 : 32;
}

// SIMD opcodes this kernel needs that opcodes.ts does not list (values from the SIMD spec).
const Simd = {
  i8x16Shl: 0x6b, i8x16ShrS: 0x6c, i8x16ShrU: 0x6d,
  i16x8ExtendLowI8x16S: 0x87, i16x8ExtendHighI8x16S: 0x88, i16x8ExtendLowI8x16U: 0x89, i16x8ExtendHighI8x16U: 0x8a,
  i32x4ExtendLowI16x8S: 0xa7, i32x4ExtendHighI16x8S: 0xa8,
} as const;
const simdOp = (code: number): SimdOp => code as unknown as SimdOp;

// Interleave the low (even elements) and high (odd elements) nibble vectors back into element order.
const INTERLEAVE_LOW = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
const INTERLEAVE_HIGH = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];

export function quantKernelKey(v: QuantKernelVariant): string {
  return `q${v.bits}${v.signed ? 's' : 'u'}${v.fma ? 'f' : ''}`;
}

export function buildQuantMatmulModule(v: QuantKernelVariant, memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().named(`quant-matmul ${quantKernelKey(v)}`).importMemory(memory);
  const rowFns = [4, 2, 1].map((rows) => emitGemvRows(m, v, rows));
  const gemv = m.function({ params: [...QKERNEL_PARAMS], results: [] }, QGEMV_EXPORT);
  {
    // Rows of x in blocks of 4, then 2, then 1: every decoded chunk serves a whole block.
    const f = gemv;
    const [desc, j0, nj] = [0, 1, 2];
    const r0 = f.local(i32), mRows = f.local(i32);
    f.localGet(desc).mem(MemOp.i32Load, 4 * QDesc.m).localSet(mRows);
    f.i32Const(0).localSet(r0);
    [4, 2, 1].forEach((rows, i) => {
      f.block().loop();
      f.localGet(r0).i32Const(rows).op(Op.i32Add).localGet(mRows).op(Op.i32GtS).brIf(1);
      f.localGet(desc).localGet(j0).localGet(nj).localGet(r0).call(rowFns[i]!.index);
      f.localGet(r0).i32Const(rows).op(Op.i32Add).localSet(r0).br(0);
      f.end().end();
    });
  }
  const dequant = emitDequant(m, v);
  emitRowTask(m, [{ fn: gemv, params: QKERNEL_PARAMS }, { fn: dequant, params: QKERNEL_PARAMS }]);
  return m.encode();
}

/** Loads descriptor word `field` onto the stack. */
function field(f: FunctionBuilder, desc: number, name: keyof typeof QDesc): FunctionBuilder {
  return f.localGet(desc).mem(MemOp.i32Load, 4 * QDesc[name]);
}

/**
 * Decodes the 16-byte chunk at address local `addr` into float32 vectors w[0..] (4 for int8, 8 for
 * int4), minus the zero point vector `zv` when the codes are unsigned.
 */
function emitDecodeChunk(f: FunctionBuilder, v: QuantKernelVariant, addr: number, w: readonly number[], zv: number, bytes: readonly number[]): void {
  f.localGet(addr).simdMem(SimdMemOp.v128Load, 0, 0).localSet(bytes[0]!);
  let parts: number[];
  if (v.bits === 4) {
    const [raw, lo, hi] = bytes as [number, number, number];
    if (v.signed) {
      f.localGet(raw).i32Const(4).simd(simdOp(Simd.i8x16Shl)).i32Const(4).simd(simdOp(Simd.i8x16ShrS)).localSet(lo);
      f.localGet(raw).i32Const(4).simd(simdOp(Simd.i8x16ShrS)).localSet(hi);
    } else {
      f.localGet(raw).v128Const(new Uint8Array(16).fill(0x0f)).simd(SimdOp.v128And).localSet(lo);
      f.localGet(raw).i32Const(4).simd(simdOp(Simd.i8x16ShrU)).localSet(hi);
    }
    // Nibbles are 4-bit values in 8-bit lanes now (signed or not); put them back in element order.
    f.localGet(lo).localGet(hi).i8x16Shuffle(INTERLEAVE_LOW).localSet(raw);
    f.localGet(lo).localGet(hi).i8x16Shuffle(INTERLEAVE_HIGH).localSet(hi);
    parts = [raw, hi];
  } else {
    parts = [bytes[0]!];
  }
  const lowOp = v.signed || v.bits === 4 ? Simd.i16x8ExtendLowI8x16S : Simd.i16x8ExtendLowI8x16U;
  const highOp = v.signed || v.bits === 4 ? Simd.i16x8ExtendHighI8x16S : Simd.i16x8ExtendHighI8x16U;
  parts.forEach((p, pi) => {
    [lowOp, highOp].forEach((op, h) => {
      const tmp = bytes[bytes.length - 1]!;
      f.localGet(p).simd(simdOp(op)).localSet(tmp);
      [Simd.i32x4ExtendLowI16x8S, Simd.i32x4ExtendHighI16x8S].forEach((op2, q) => {
        const target = w[pi * 4 + h * 2 + q]!;
        f.localGet(tmp).simd(simdOp(op2)).simd(SimdOp.f32x4ConvertI32x4S);
        if (!v.signed) f.localGet(zv).simd(SimdOp.f32x4Sub);
        f.localSet(target);
      });
    });
  });
}

/** cnt = the chunks of group g: chunksPerGroup, or chunksLastGroup for the last group of the row. */
function chunksOfGroup(f: FunctionBuilder, desc: number, g: number, groups: number, cpg: number, cnt: number): void {
  field(f, desc, 'chunksLastGroup');
  f.localGet(cpg);
  f.localGet(g).localGet(groups).i32Const(1).op(Op.i32Sub).op(Op.i32Eq).op(Op.select).localSet(cnt);
}

/** acc = a · b + acc (fused where relaxed SIMD is available). */
function madd(f: FunctionBuilder, fma: boolean, a: () => void, b: () => void, acc: number): void {
  if (fma) {
    a(); b(); f.localGet(acc).simd(SimdOp.f32x4RelaxedMadd).localSet(acc);
  } else {
    a(); b(); f.simd(SimdOp.f32x4Mul).localGet(acc).simd(SimdOp.f32x4Add).localSet(acc);
  }
}

/** gemv_R(desc, j0, nj, r0): rows r0..r0+R of x against output features j0..j0+nj. */
function emitGemvRows(m: ModuleBuilder, v: QuantKernelVariant, rows: number): FunctionBuilder {
  const f = m.function({ params: [i32, i32, i32, i32], results: [] });
  const [desc, j0, nj, r0] = [0, 1, 2, 3];
  const chunkVectors = v.bits === 8 ? 4 : 8;
  // Independent accumulators per row, so that the adds of one chunk do not all wait on each other.
  const accsPerRow = rows === 1 ? 4 : rows === 2 ? 2 : 1;
  const j = f.local(i32), g = f.local(i32), c = f.local(i32), wAddr = f.local(i32), xOff = f.local(i32), jEnd = f.local(i32);
  const groups = f.local(i32), cpg = f.local(i32), srow = f.local(i32), zrow = f.local(i32), bias = f.local(i32), cnt = f.local(i32);
  const xBase = Array.from({ length: rows }, () => f.local(i32));
  const xAddr = f.local(i32);
  const w = Array.from({ length: chunkVectors }, () => f.local(v128));
  const bytes = v.bits === 4 ? [f.local(v128), f.local(v128), f.local(v128), f.local(v128)] : [f.local(v128), f.local(v128)];
  const zv = f.local(v128), sv = f.local(v128);
  const acc = Array.from({ length: rows }, () => Array.from({ length: accsPerRow }, () => f.local(v128)));
  const tot = Array.from({ length: rows }, () => f.local(v128));
  const y = f.local(f32);
  const zero = () => f.f32x4Const(0, 0, 0, 0);

  field(f, desc, 'groups').localSet(groups);
  field(f, desc, 'chunksPerGroup').localSet(cpg);
  field(f, desc, 'bias').localSet(bias);
  for (let r = 0; r < rows; r++) {
    field(f, desc, 'x');
    f.localGet(r0).i32Const(r).op(Op.i32Add);
    field(f, desc, 'xStride').op(Op.i32Mul).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(xBase[r]!);
  }
  f.localGet(j0).localGet(nj).op(Op.i32Add).localSet(jEnd);
  f.forRange(j, () => f.localGet(j0), () => f.localGet(jEnd), 1, () => {
    field(f, desc, 'w');
    f.localGet(j);
    field(f, desc, 'rowBytes').op(Op.i32Mul).op(Op.i32Add).localSet(wAddr);
    field(f, desc, 'scales');
    f.localGet(j);
    field(f, desc, 'scaleRowStride').op(Op.i32Mul).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(srow);
    if (!v.signed) {
      field(f, desc, 'zeroPoints');
      f.localGet(j);
      field(f, desc, 'scaleRowStride').op(Op.i32Mul).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(zrow);
    }
    for (const t of tot) zero().localSet(t);
    f.i32Const(0).localSet(xOff);
    f.forRange(g, () => f.i32Const(0), () => f.localGet(groups), 1, () => {
      for (const row of acc) for (const a of row) zero().localSet(a);
      if (!v.signed) {
        f.localGet(zrow).localGet(g).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.i32Load)
          .op(Op.f32ConvertI32S).simd(SimdOp.f32x4Splat).localSet(zv);
      }
      chunksOfGroup(f, desc, g, groups, cpg, cnt);
      f.forRange(c, () => f.i32Const(0), () => f.localGet(cnt), 1, () => {
        emitDecodeChunk(f, v, wAddr, w, zv, bytes);
        for (let r = 0; r < rows; r++) {
          f.localGet(xBase[r]!).localGet(xOff).op(Op.i32Add).localSet(xAddr);
          for (let i = 0; i < chunkVectors; i++) {
            const a = acc[r]![i % accsPerRow]!;
            madd(f, v.fma, () => f.localGet(w[i]!), () => f.localGet(xAddr).simdMem(SimdMemOp.v128Load, 16 * i, 0), a);
          }
        }
        f.localGet(wAddr).i32Const(16).op(Op.i32Add).localSet(wAddr);
        f.localGet(xOff).i32Const(16 * chunkVectors).op(Op.i32Add).localSet(xOff);
      });
      f.localGet(srow).localGet(g).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.f32Load).simd(SimdOp.f32x4Splat).localSet(sv);
      for (let r = 0; r < rows; r++) {
        const row = acc[r]!;
        for (let a = 1; a < row.length; a++) f.localGet(row[0]!).localGet(row[a]!).simd(SimdOp.f32x4Add).localSet(row[0]!);
        madd(f, v.fma, () => f.localGet(sv), () => f.localGet(row[0]!), tot[r]!);
      }
    });
    for (let r = 0; r < rows; r++) {
      const t = tot[r]!;
      f.localGet(t).simdLane(SimdLaneOp.f32x4ExtractLane, 0).localGet(t).simdLane(SimdLaneOp.f32x4ExtractLane, 1).op(Op.f32Add)
        .localGet(t).simdLane(SimdLaneOp.f32x4ExtractLane, 2).localGet(t).simdLane(SimdLaneOp.f32x4ExtractLane, 3).op(Op.f32Add)
        .op(Op.f32Add).localSet(y);
      f.localGet(bias).if();
      f.localGet(y).localGet(bias).localGet(j).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.f32Load).op(Op.f32Add).localSet(y);
      f.end();
      // out[(r0 + r) · n + j]
      field(f, desc, 'out');
      f.localGet(r0).i32Const(r).op(Op.i32Add);
      field(f, desc, 'n').op(Op.i32Mul).localGet(j).op(Op.i32Add).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
      f.localGet(y).mem(MemOp.f32Store);
    }
  });
  return f;
}

/** qdequant(desc, j0, nj): panel row (j − dstFirst) = (q_j − zp) · s, float32, row stride dstStride. */
function emitDequant(m: ModuleBuilder, v: QuantKernelVariant): FunctionBuilder {
  const f = m.function({ params: [...QKERNEL_PARAMS], results: [] }, QDEQUANT_EXPORT);
  const [desc, j0, nj] = [0, 1, 2];
  const chunkVectors = v.bits === 8 ? 4 : 8;
  const j = f.local(i32), g = f.local(i32), c = f.local(i32), wAddr = f.local(i32), dAddr = f.local(i32), jEnd = f.local(i32);
  const groups = f.local(i32), cpg = f.local(i32), srow = f.local(i32), zrow = f.local(i32), cnt = f.local(i32);
  const w = Array.from({ length: chunkVectors }, () => f.local(v128));
  const bytes = v.bits === 4 ? [f.local(v128), f.local(v128), f.local(v128), f.local(v128)] : [f.local(v128), f.local(v128)];
  const zv = f.local(v128), sv = f.local(v128);
  field(f, desc, 'groups').localSet(groups);
  field(f, desc, 'chunksPerGroup').localSet(cpg);
  f.localGet(j0).localGet(nj).op(Op.i32Add).localSet(jEnd);
  f.forRange(j, () => f.localGet(j0), () => f.localGet(jEnd), 1, () => {
    field(f, desc, 'w');
    f.localGet(j);
    field(f, desc, 'rowBytes').op(Op.i32Mul).op(Op.i32Add).localSet(wAddr);
    field(f, desc, 'dst');
    f.localGet(j);
    field(f, desc, 'dstFirst').op(Op.i32Sub);
    field(f, desc, 'dstStride').op(Op.i32Mul).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(dAddr);
    field(f, desc, 'scales');
    f.localGet(j);
    field(f, desc, 'scaleRowStride').op(Op.i32Mul).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(srow);
    if (!v.signed) {
      field(f, desc, 'zeroPoints');
      f.localGet(j);
      field(f, desc, 'scaleRowStride').op(Op.i32Mul).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(zrow);
    }
    f.forRange(g, () => f.i32Const(0), () => f.localGet(groups), 1, () => {
      if (!v.signed) {
        f.localGet(zrow).localGet(g).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.i32Load)
          .op(Op.f32ConvertI32S).simd(SimdOp.f32x4Splat).localSet(zv);
      }
      f.localGet(srow).localGet(g).i32Const(2).op(Op.i32Shl).op(Op.i32Add).mem(MemOp.f32Load).simd(SimdOp.f32x4Splat).localSet(sv);
      chunksOfGroup(f, desc, g, groups, cpg, cnt);
      f.forRange(c, () => f.i32Const(0), () => f.localGet(cnt), 1, () => {
        emitDecodeChunk(f, v, wAddr, w, zv, bytes);
        for (let i = 0; i < chunkVectors; i++) {
          f.localGet(dAddr).localGet(w[i]!).localGet(sv).simd(SimdOp.f32x4Mul).simdMem(SimdMemOp.v128Store, 16 * i, 0);
        }
        f.localGet(wAddr).i32Const(16).op(Op.i32Add).localSet(wAddr);
        f.localGet(dAddr).i32Const(16 * chunkVectors).op(Op.i32Add).localSet(dAddr);
      });
    });
  });
  return f;
}
