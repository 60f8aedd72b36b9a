// Generated f32 SIMD kernels for elementwise primitives over one "row": n elements where each
// input is either contiguous (stride 1) or one value broadcast along the row (stride 0). The
// backend collapses a strided N-d operation into rows of this kind (elementwise.ts).
//
// Only ops whose f32x4 instruction gives exactly the reference backend's result are here:
// + − × ÷ and sqrt are correctly rounded in both; min/max propagate NaN like the reference;
// relu is max(x, 0); round is round-half-even (`nearest`). Transcendentals (exp, log, tanh…)
// keep the reference's Math.* results and run through the cpu kernels on heap views.

import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, type MemoryImport, type FunctionBuilder } from './encoder.js';

const { i32, v128, f32 } = ValType;

export const SIMD_BINARY_OPS = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const;
export const SIMD_UNARY_OPS = ['neg', 'abs', 'relu', 'sqrt', 'floor', 'ceil', 'round'] as const;
export type SimdBinaryOp = (typeof SIMD_BINARY_OPS)[number];
export type SimdUnaryOp = (typeof SIMD_UNARY_OPS)[number];

/**
 * How an input walks along the row: stride 1 (SIMD loads), stride 0 (one value, splat), or any
 * other stride (scalar loads; the op itself is the same instruction, so results are identical).
 */
export type RowMode = 'contiguous' | 'broadcast' | 'strided';

const BINARY: Record<SimdBinaryOp, { simd: SimdOp; scalar: Op }> = {
  add: { simd: SimdOp.f32x4Add, scalar: Op.f32Add },
  sub: { simd: SimdOp.f32x4Sub, scalar: Op.f32Sub },
  mul: { simd: SimdOp.f32x4Mul, scalar: Op.f32Mul },
  div: { simd: SimdOp.f32x4Div, scalar: Op.f32Div },
  maximum: { simd: SimdOp.f32x4Max, scalar: Op.f32Max },
  minimum: { simd: SimdOp.f32x4Min, scalar: Op.f32Min },
};

/** Each unary op as "push x, emit this" for a vector and for a scalar. */
const UNARY: Record<SimdUnaryOp, { simd: (f: FunctionBuilder) => void; scalar: (f: FunctionBuilder) => void }> = {
  neg: { simd: (f) => f.simd(SimdOp.f32x4Neg), scalar: (f) => f.op(Op.f32Neg) },
  abs: { simd: (f) => f.simd(SimdOp.f32x4Abs), scalar: (f) => f.op(Op.f32Abs) },
  relu: {
    simd: (f) => f.f32x4Const(0, 0, 0, 0).simd(SimdOp.f32x4Max),
    scalar: (f) => f.f32Const(0).op(Op.f32Max),
  },
  sqrt: { simd: (f) => f.simd(SimdOp.f32x4Sqrt), scalar: (f) => f.op(Op.f32Sqrt) },
  floor: { simd: (f) => f.simd(SimdOp.f32x4Floor), scalar: (f) => f.op(Op.f32Floor) },
  ceil: { simd: (f) => f.simd(SimdOp.f32x4Ceil), scalar: (f) => f.op(Op.f32Ceil) },
  round: { simd: (f) => f.simd(SimdOp.f32x4Nearest), scalar: (f) => f.op(Op.f32Nearest) },
};

export function binaryExportName(op: SimdBinaryOp, a: RowMode, b: RowMode): string {
  return `${op}_${a[0]}${b[0]}`;
}

export function unaryExportName(op: SimdUnaryOp, mode: 'contiguous' | 'strided' = 'contiguous'): string {
  return `${op}_${mode[0]}`;
}

const MODES = ['contiguous', 'broadcast', 'strided'] as const;

/**
 * One module with every op and mode: binary `(out, a, b, n, strideA, strideB)` and unary
 * `(out, x, n, strideX)`; byte addresses, byte strides (read only by strided inputs), f32
 * elements. The output is always contiguous.
 */
export function buildElementwiseModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  for (const op of SIMD_BINARY_OPS) for (const am of MODES) for (const bm of MODES) emitBinary(m, op, am, bm);
  for (const op of SIMD_UNARY_OPS) {
    emitUnary(m, op);
    emitUnaryStrided(m, op);
  }
  return m.encode();
}

function emitBinary(m: ModuleBuilder, op: SimdBinaryOp, am: RowMode, bm: RowMode): void {
  const f = m.function({ params: [i32, i32, i32, i32, i32, i32], results: [] }, binaryExportName(op, am, bm));
  const [out, a, b, n, sa, sb] = [0, 1, 2, 3, 4, 5];
  const i = f.local(i32), nVec = f.local(i32), av = f.local(v128), bv = f.local(v128);
  const as = f.local(f32), bs = f.local(f32), pa = f.local(i32), pb = f.local(i32);
  if (am === 'broadcast') f.localGet(a).mem(MemOp.f32Load).localTee(as).simd(SimdOp.f32x4Splat).localSet(av);
  if (bm === 'broadcast') f.localGet(b).mem(MemOp.f32Load).localTee(bs).simd(SimdOp.f32x4Splat).localSet(bv);
  const byteOffset = (base: number) => f.localGet(base).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
  if (am === 'strided' || bm === 'strided') {
    // Scalar loop: strided inputs advance by their stride, the others as usual.
    f.localGet(a).localSet(pa).localGet(b).localSet(pb);
    f.forRange(i, () => f.i32Const(0), () => f.localGet(n), 1, () => {
      byteOffset(out);
      if (am === 'broadcast') f.localGet(as);
      else f.localGet(pa).mem(MemOp.f32Load);
      if (bm === 'broadcast') f.localGet(bs);
      else f.localGet(pb).mem(MemOp.f32Load);
      f.op(BINARY[op].scalar).mem(MemOp.f32Store);
      const advance = (ptr: number, mode: RowMode, stride: number) => {
        if (mode === 'broadcast') return;
        f.localGet(ptr);
        if (mode === 'strided') f.localGet(stride);
        else f.i32Const(4);
        f.op(Op.i32Add).localSet(ptr);
      };
      advance(pa, am, sa);
      advance(pb, bm, sb);
    });
    return;
  }
  f.localGet(n).i32Const(-4).op(Op.i32And).localSet(nVec);
  f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
    byteOffset(out);
    if (am === 'contiguous') byteOffset(a).simdMem(SimdMemOp.v128Load, 0, 2);
    else f.localGet(av);
    if (bm === 'contiguous') byteOffset(b).simdMem(SimdMemOp.v128Load, 0, 2);
    else f.localGet(bv);
    f.simd(BINARY[op].simd).simdMem(SimdMemOp.v128Store, 0, 2);
  });
  f.forRange(i, () => f.localGet(nVec), () => f.localGet(n), 1, () => {
    byteOffset(out);
    if (am === 'contiguous') byteOffset(a).mem(MemOp.f32Load);
    else f.localGet(as);
    if (bm === 'contiguous') byteOffset(b).mem(MemOp.f32Load);
    else f.localGet(bs);
    f.op(BINARY[op].scalar).mem(MemOp.f32Store);
  });
}

function emitUnaryStrided(m: ModuleBuilder, op: SimdUnaryOp): void {
  const f = m.function({ params: [i32, i32, i32, i32], results: [] }, unaryExportName(op, 'strided'));
  const [out, x, n, sx] = [0, 1, 2, 3];
  const i = f.local(i32), p = f.local(i32);
  f.localGet(x).localSet(p);
  f.forRange(i, () => f.i32Const(0), () => f.localGet(n), 1, () => {
    f.localGet(out).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
    f.localGet(p).mem(MemOp.f32Load);
    UNARY[op].scalar(f);
    f.mem(MemOp.f32Store);
    f.localGet(p).localGet(sx).op(Op.i32Add).localSet(p);
  });
}

function emitUnary(m: ModuleBuilder, op: SimdUnaryOp): void {
  const f = m.function({ params: [i32, i32, i32, i32], results: [] }, unaryExportName(op));
  const [out, x, n] = [0, 1, 2];
  const i = f.local(i32), nVec = f.local(i32);
  const byteOffset = (base: number) => f.localGet(base).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
  f.localGet(n).i32Const(-4).op(Op.i32And).localSet(nVec);
  f.forRange(i, () => f.i32Const(0), () => f.localGet(nVec), 4, () => {
    byteOffset(out);
    byteOffset(x).simdMem(SimdMemOp.v128Load, 0, 2);
    UNARY[op].simd(f);
    f.simdMem(SimdMemOp.v128Store, 0, 2);
  });
  f.forRange(i, () => f.localGet(nVec), () => f.localGet(n), 1, () => {
    byteOffset(out);
    byteOffset(x).mem(MemOp.f32Load);
    UNARY[op].scalar(f);
    f.mem(MemOp.f32Store);
  });
}

export const SCALAR_COMPARE_OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
export type ScalarCompareOp = (typeof SCALAR_COMPARE_OPS)[number];

const COMPARE: Record<ScalarCompareOp, Op> = {
  eq: Op.f32Eq, ne: Op.f32Ne, lt: Op.f32Lt, le: Op.f32Le, gt: Op.f32Gt, ge: Op.f32Ge,
};

export function compareExportName(op: ScalarCompareOp): string {
  return `cmp_${op}`;
}

export const WHERE_EXPORT = 'where_f32';

/**
 * Comparisons of f32 rows into bool bytes, `(out, a, b, n, strideA, strideB)`, and
 * `where_f32(out, cond, x, y, n, strideCond, strideX, strideY)` with a bool condition; byte
 * strides, any value (0 broadcasts). Scalar loops: a compare costs about as much as the store
 * of its byte, and `f32.gt` etc. give exactly the reference's `a > b ? 1 : 0` (NaN included).
 */
export function buildCompareModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  for (const op of SCALAR_COMPARE_OPS) {
    const f = m.function({ params: [i32, i32, i32, i32, i32, i32], results: [] }, compareExportName(op));
    const [out, a, b, n, sa, sb] = [0, 1, 2, 3, 4, 5];
    const i = f.local(i32), pa = f.local(i32), pb = f.local(i32);
    f.localGet(a).localSet(pa).localGet(b).localSet(pb);
    f.forRange(i, () => f.i32Const(0), () => f.localGet(n), 1, () => {
      f.localGet(out).localGet(i).op(Op.i32Add);
      f.localGet(pa).mem(MemOp.f32Load).localGet(pb).mem(MemOp.f32Load).op(COMPARE[op]);
      f.mem(MemOp.i32Store8);
      f.localGet(pa).localGet(sa).op(Op.i32Add).localSet(pa);
      f.localGet(pb).localGet(sb).op(Op.i32Add).localSet(pb);
    });
  }
  const f = m.function({ params: [i32, i32, i32, i32, i32, i32, i32, i32], results: [] }, WHERE_EXPORT);
  const [out, c, x, y, n, sc, sx, sy] = [0, 1, 2, 3, 4, 5, 6, 7];
  const i = f.local(i32), pc = f.local(i32), px = f.local(i32), py = f.local(i32);
  f.localGet(c).localSet(pc).localGet(x).localSet(px).localGet(y).localSet(py);
  f.forRange(i, () => f.i32Const(0), () => f.localGet(n), 1, () => {
    f.localGet(out).localGet(i).i32Const(2).op(Op.i32Shl).op(Op.i32Add);
    f.localGet(px).mem(MemOp.f32Load).localGet(py).mem(MemOp.f32Load).localGet(pc).mem(MemOp.i32Load8U).op(Op.select);
    f.mem(MemOp.f32Store);
    f.localGet(pc).localGet(sc).op(Op.i32Add).localSet(pc);
    f.localGet(px).localGet(sx).op(Op.i32Add).localSet(px);
    f.localGet(py).localGet(sy).op(Op.i32Add).localSet(py);
  });
  return m.encode();
}
