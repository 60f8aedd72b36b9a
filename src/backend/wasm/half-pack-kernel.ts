// Converting between the packed float16/bfloat16 storages of the wasm backend (2-byte bit patterns,
// half the heap of float32 words) and the float32 words its kernels compute on:
//   widenBf16(dst, src, n), widenF16(dst, src, n)     n patterns at src → n float32 words at dst, exact
//   narrowBf16(dst, src, n), narrowF16(dst, src, n)   n float32 words at src → n patterns at dst, rounded
//   task(unit, params, thread)                         one of the four on a unit's block (thread pool)
// Byte addresses, element counts. Narrowing rounds as cpu roundToFormat does, with half-round-kernel.ts's
// code (to nearest even; float16 overflows to inf from 65520 and has subnormals), so a kernel's float32
// result becomes its half-format output in this one pass. Widening is exact: a bfloat16 is the top half
// of a float32; a float16 normal or subnormal is its bits moved into a float32's place and scaled by
// 2^112 (exact: a power of two, normal result), inf and NaN keep their payload.
//
// NaN policy: a NaN stays a NaN of the same sign. Narrowing keeps the payload's top bits (bfloat16 7,
// float16 10) and sets the quiet bit (so a payload held only in dropped low bits cannot turn into inf);
// widening keeps every payload bit. The canonical NaNs (0x7fc00000 and its negative, what wasm
// arithmetic and JavaScript produce) survive a round trip bit for bit; other float32 payloads lose their
// low bits, which a float32 word could hold before the storages were packed.
//
// Eight elements per step: a v128 of eight 2-byte patterns is two i32x4 of words (extend_low/high_u
// one way, narrow_i32x4_u the other); the tail goes one element at a time through the same code on a
// vector with one live lane.
import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type FunctionBuilder, type MemoryImport } from './encoder.js';

const { i32, v128 } = ValType;

/** The exports, in the order of their op number in the task's parameter block. */
export const HALF_PACK_EXPORTS = ['widenBf16', 'widenF16', 'narrowBf16', 'narrowF16'] as const;
export type HalfPackExport = (typeof HALF_PACK_EXPORTS)[number];

/** i32 words of the task's parameter block: which export, its arguments, elements per unit. */
export const HalfPackParam = { op: 0, dst: 1, src: 2, n: 3, chunk: 4 } as const;
export const HALF_PACK_PARAM_WORDS = 8;

/** Pushes an i32x4 with `x` in every lane. */
function splat(f: FunctionBuilder, x: number): FunctionBuilder {
  return f.i32x4Const(x, x, x, x);
}

/** float32 words of the float16 patterns (u16 in i32 lanes) in local `h`; scratch `em`. */
function widenF16(f: FunctionBuilder, h: number, em: number): void {
  f.localGet(h); splat(f, 0x7fff).simd(SimdOp.v128And).localSet(em);
  // inf/NaN: the float32 exponent all ones, the mantissa (payload) moved up.
  f.localGet(em).i32Const(13).simd(SimdOp.i32x4Shl); splat(f, 0x7f800000).simd(SimdOp.v128Or);
  // Normals and subnormals: exponent and mantissa moved up (a float32 2^112 times too small; a float16
  // subnormal lands on a float32 subnormal), times 2^112.
  f.localGet(em).i32Const(13).simd(SimdOp.i32x4Shl); f.f32x4Const(2 ** 112, 2 ** 112, 2 ** 112, 2 ** 112).simd(SimdOp.f32x4Mul);
  splat(f, 0x7bff); f.localGet(em).simd(SimdOp.i32x4LtS);
  f.simd(SimdOp.v128Bitselect);
  f.localGet(h); splat(f, 0x8000).simd(SimdOp.v128And).i32Const(16).simd(SimdOp.i32x4Shl).simd(SimdOp.v128Or);
}

/** bfloat16 patterns (u16 in i32 lanes) of the float32 words in local `b`, rounded; scratch `abs`. */
function narrowBf16(f: FunctionBuilder, b: number, abs: number): void {
  // NaN: its top bits with the quiet bit (a payload held only in the 16 bits dropped would read as inf).
  f.localGet(b).i32Const(16).simd(SimdOp.i32x4ShrU); splat(f, 0x40).simd(SimdOp.v128Or);
  // Others, to nearest even: b + 0x7fff + (bit 16 of b), top half. A carry moves into the next binade
  // or from the largest finite to inf; inf stays inf.
  f.localGet(b); splat(f, 0x7fff).simd(SimdOp.i32x4Add);
  f.localGet(b).i32Const(16).simd(SimdOp.i32x4ShrU); splat(f, 1).simd(SimdOp.v128And).simd(SimdOp.i32x4Add);
  f.i32Const(16).simd(SimdOp.i32x4ShrU);
  // |b| fits in 31 bits, so signed compares (native on x64, unlike unsigned ones) order it.
  f.localGet(b); splat(f, 0x7fffffff).simd(SimdOp.v128And).localTee(abs); splat(f, 0x7f800000).simd(SimdOp.i32x4GtS);
  f.simd(SimdOp.v128Bitselect);
}

/** float16 patterns (u16 in i32 lanes) of the float32 words in local `b`, rounded; scratch `abs`. */
function narrowF16(f: FunctionBuilder, b: number, abs: number): void {
  f.localGet(b); splat(f, 0x7fffffff).simd(SimdOp.v128And).localSet(abs);
  // NaN: exponent all ones, the quiet bit, the payload's top ten bits.
  f.localGet(abs).i32Const(13).simd(SimdOp.i32x4ShrU); splat(f, 0x3ff).simd(SimdOp.v128And); splat(f, 0x7e00).simd(SimdOp.v128Or);
  // Subnormals (|b| < 2^-14): |b| + 0.5 rounds |b| to a multiple of 2^-24 (float32's spacing in [0.5, 1)),
  // to nearest even, and its low mantissa bits are then that multiple, i.e. the pattern. A value that
  // rounds up to 2^-14 gives 0x400, which is 2^-14's pattern too.
  f.localGet(abs); f.f32x4Const(0.5, 0.5, 0.5, 0.5).simd(SimdOp.f32x4Add); splat(f, 0x3f000000).simd(SimdOp.i32x4Sub);
  // Normals: drop 13 mantissa bits to nearest even, rebias the exponent from 127 to 15; a carry moves
  // into the next binade, and anything from 65520 up (inf included) comes out ≥ 0x7c00: clamped to inf.
  f.localGet(abs); splat(f, 0xfff).simd(SimdOp.i32x4Add);
  f.localGet(abs).i32Const(13).simd(SimdOp.i32x4ShrU); splat(f, 1).simd(SimdOp.v128And).simd(SimdOp.i32x4Add);
  f.i32Const(13).simd(SimdOp.i32x4ShrU); splat(f, 0x1c000).simd(SimdOp.i32x4Sub); splat(f, 0x7c00).simd(SimdOp.i32x4MinS);
  // (|b| fits in 31 bits: signed compares, native on x64, order it.)
  splat(f, 0x38800000); f.localGet(abs).simd(SimdOp.i32x4GtS);
  f.simd(SimdOp.v128Bitselect);
  f.localGet(abs); splat(f, 0x7f800000).simd(SimdOp.i32x4GtS);
  f.simd(SimdOp.v128Bitselect);
  f.localGet(b).i32Const(16).simd(SimdOp.i32x4ShrU); splat(f, 0x8000).simd(SimdOp.v128And).simd(SimdOp.v128Or);
}

/**
 * float32 words of the half-format patterns held as u16 in the i32 lanes of local `h`, left on the
 * stack (scratch `em`, float16 only): also how the SGEMM's packing reads packed operands (matmul-kernel.ts).
 */
export function emitWidenLanes(f: FunctionBuilder, format: 'bfloat16' | 'float16', h: number, em: number): void {
  if (format === 'bfloat16') f.localGet(h).i32Const(16).simd(SimdOp.i32x4Shl);
  else widenF16(f, h, em);
}

function buildWiden(m: ModuleBuilder, name: HalfPackExport, format: 'bf16' | 'f16'): FunctionBuilder {
  const f = m.function({ params: [i32, i32, i32], results: [] }, name);
  const dst = 0, src = 1, n = 2;
  const s = f.local(i32), d = f.local(i32), end8 = f.local(i32), end = f.local(i32);
  const packed = f.local(v128), h = f.local(v128), em = f.local(v128);
  const widen = (): void => emitWidenLanes(f, format === 'bf16' ? 'bfloat16' : 'float16', h, em);
  f.localGet(src).localGet(n).i32Const(1).op(Op.i32Shl).op(Op.i32Add).localSet(end);
  f.localGet(src).localGet(n).i32Const(-8).op(Op.i32And).i32Const(1).op(Op.i32Shl).op(Op.i32Add).localSet(end8);
  f.localGet(dst).localSet(d);
  f.forRange(s, () => f.localGet(src), () => f.localGet(end8), 16, () => {
    f.localGet(s).simdMem(SimdMemOp.v128Load, 0, 1).localSet(packed);
    f.localGet(packed).simd(SimdOp.i32x4ExtendLowI16x8U).localSet(h);
    f.localGet(d); widen(); f.simdMem(SimdMemOp.v128Store, 0, 2);
    f.localGet(packed).simd(SimdOp.i32x4ExtendHighI16x8U).localSet(h);
    f.localGet(d); widen(); f.simdMem(SimdMemOp.v128Store, 16, 2);
    f.localGet(d).i32Const(32).op(Op.i32Add).localSet(d);
  });
  f.forRange(s, () => f.localGet(end8), () => f.localGet(end), 2, () => {
    f.localGet(s).mem(MemOp.i32Load16U).simd(SimdOp.i32x4Splat).localSet(h);
    f.localGet(d); widen(); f.simdLane(SimdLaneOp.i32x4ExtractLane, 0).mem(MemOp.i32Store);
    f.localGet(d).i32Const(4).op(Op.i32Add).localSet(d);
  });
  return f;
}

function buildNarrow(m: ModuleBuilder, name: HalfPackExport, format: 'bf16' | 'f16'): FunctionBuilder {
  const f = m.function({ params: [i32, i32, i32], results: [] }, name);
  const dst = 0, src = 1, n = 2;
  const s = f.local(i32), d = f.local(i32), end8 = f.local(i32), end = f.local(i32);
  const b = f.local(v128), lo = f.local(v128), abs = f.local(v128);
  const narrow = (): void => (format === 'bf16' ? narrowBf16(f, b, abs) : narrowF16(f, b, abs));
  f.localGet(src).localGet(n).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(end);
  f.localGet(src).localGet(n).i32Const(-8).op(Op.i32And).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(end8);
  f.localGet(dst).localSet(d);
  f.forRange(s, () => f.localGet(src), () => f.localGet(end8), 32, () => {
    f.localGet(s).simdMem(SimdMemOp.v128Load, 0, 2).localSet(b);
    narrow(); f.localSet(lo);
    f.localGet(s).simdMem(SimdMemOp.v128Load, 16, 2).localSet(b);
    // Stack: d, lo, hi → d, eight patterns.
    f.localGet(d).localGet(lo);
    narrow();
    f.simd(SimdOp.i16x8NarrowI32x4U).simdMem(SimdMemOp.v128Store, 0, 1);
    f.localGet(d).i32Const(16).op(Op.i32Add).localSet(d);
  });
  f.forRange(s, () => f.localGet(end8), () => f.localGet(end), 4, () => {
    f.localGet(s).simdMem(SimdMemOp.v128Load32Zero, 0, 2).localSet(b);
    f.localGet(d);
    narrow();
    f.simdLane(SimdLaneOp.i32x4ExtractLane, 0).mem(MemOp.i32Store16);
    f.localGet(d).i32Const(2).op(Op.i32Add).localSet(d);
  });
  return f;
}

export function buildHalfPackModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().named('half-pack').importMemory(memory);
  const fns = [
    buildWiden(m, 'widenBf16', 'bf16'), buildWiden(m, 'widenF16', 'f16'),
    buildNarrow(m, 'narrowBf16', 'bf16'), buildNarrow(m, 'narrowF16', 'f16'),
  ];
  // task(unit, params, thread): elements [unit·chunk, min(n, (unit+1)·chunk)) of the export `op`.
  const t = m.function({ params: [i32, i32, i32], results: [] }, 'task');
  const unit = 0, params = 1;
  const op = t.local(i32), start = t.local(i32), len = t.local(i32);
  t.localGet(params).mem(MemOp.i32Load, 4 * HalfPackParam.op).localSet(op);
  t.localGet(unit).localGet(params).mem(MemOp.i32Load, 4 * HalfPackParam.chunk).op(Op.i32Mul).localSet(start);
  t.localGet(params).mem(MemOp.i32Load, 4 * HalfPackParam.n).localGet(start).op(Op.i32Sub).localSet(len);
  t.localGet(len).localGet(params).mem(MemOp.i32Load, 4 * HalfPackParam.chunk).op(Op.i32GtU).if();
  t.localGet(params).mem(MemOp.i32Load, 4 * HalfPackParam.chunk).localSet(len);
  t.end();
  fns.forEach((fn, k) => {
    const dstBytes = k < 2 ? 4 : 2, srcBytes = k < 2 ? 2 : 4;
    t.localGet(op).i32Const(k).op(Op.i32Eq).if();
    t.localGet(params).mem(MemOp.i32Load, 4 * HalfPackParam.dst).localGet(start).i32Const(dstBytes).op(Op.i32Mul).op(Op.i32Add);
    t.localGet(params).mem(MemOp.i32Load, 4 * HalfPackParam.src).localGet(start).i32Const(srcBytes).op(Op.i32Mul).op(Op.i32Add);
    t.localGet(len).call(fn.index);
    t.end();
  });
  return m.encode();
}
