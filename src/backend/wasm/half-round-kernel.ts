// Rounding float32 words in place to bfloat16 or float16, keeping them float32 words:
//   roundBf16(ptr, n), roundF16(ptr, n)   (byte address, element count)
// The backend no longer runs this pass: its half-format storages are packed, and the narrowing into
// them rounds (half-pack-kernel.ts). This module stays as a second, independently written rounding
// of the same bits, which the packing kernel is checked against (test/backend/wasm/packed-half.test.ts).
// The bits are those of cpu/backend.ts roundToFormat:
//   - round to nearest even; inf and NaN are kept;
//   - float16 overflows to inf from 65520 and has subnormals (multiples of 2^-24).
// Four lanes per step, in i32x4 bit arithmetic; the tail goes one element at a time through the
// same code, on a vector loaded from a single word. Mixed-precision training rounds every
// activation: done in JavaScript over the heap, this was about 30% of a char-gpt bf16 step.
import { ModuleBuilder, ValType, Op, MemOp, SimdOp, SimdMemOp, SimdLaneOp, type FunctionBuilder, type MemoryImport } from './encoder.js';

const { i32, v128 } = ValType;

export const ROUND_BF16_EXPORT = 'roundBf16';
export const ROUND_F16_EXPORT = 'roundF16';

/** Pushes an i32x4 with `x` in every lane. */
function splat(f: FunctionBuilder, x: number): FunctionBuilder {
  return f.i32x4Const(x, x, x, x);
}

/** bfloat16 of the words in local `b`, left on the stack. */
function bf16(f: FunctionBuilder, b: number): void {
  // Keep b where its exponent is all ones (inf, NaN): bitselect(b, rounded, special).
  f.localGet(b);
  // rounded = (b + 0x7fff + ((b >> 16) & 1)) & 0xffff0000 (a carry into the exponent gives the next binade, or inf)
  f.localGet(b); splat(f, 0x7fff).simd(SimdOp.i32x4Add);
  f.localGet(b).i32Const(16).simd(SimdOp.i32x4ShrU); splat(f, 1).simd(SimdOp.v128And).simd(SimdOp.i32x4Add);
  splat(f, 0xffff0000 | 0).simd(SimdOp.v128And);
  f.localGet(b); splat(f, 0x7f800000).simd(SimdOp.v128And); splat(f, 0x7f800000).simd(SimdOp.i32x4Eq);
  f.simd(SimdOp.v128Bitselect);
}

/** float16 of the words in local `b` (scratch locals `abs`, `res`), left on the stack. */
function f16(f: FunctionBuilder, b: number, abs: number, res: number): void {
  f.localGet(b); splat(f, 0x7fffffff).simd(SimdOp.v128And).localSet(abs);
  // inf and NaN keep their bits; each finite range below is selected over them.
  f.localGet(b).localSet(res);
  // Subnormal halves (|x| < 2^-14): |x| + 0.5 rounds to a multiple of 2^-24 (float32's spacing in
  // [0.5, 1)), to nearest even; then 0.5 comes off exactly.
  f.localGet(abs); f.f32x4Const(0.5, 0.5, 0.5, 0.5).simd(SimdOp.f32x4Add); f.f32x4Const(0.5, 0.5, 0.5, 0.5).simd(SimdOp.f32x4Sub);
  f.localGet(res);
  f.localGet(abs); splat(f, 0x38800000).simd(SimdOp.i32x4LtU);
  f.simd(SimdOp.v128Bitselect).localSet(res);
  // Normal halves (2^-14 <= |x| < 65520): keep 10 of the 23 mantissa bits, to nearest even.
  f.localGet(abs); splat(f, 0xfff).simd(SimdOp.i32x4Add);
  f.localGet(abs).i32Const(13).simd(SimdOp.i32x4ShrU); splat(f, 1).simd(SimdOp.v128And).simd(SimdOp.i32x4Add);
  splat(f, 0xffffe000 | 0).simd(SimdOp.v128And);
  f.localGet(res);
  f.localGet(abs); splat(f, 0x38800000).simd(SimdOp.i32x4GeU);
  f.localGet(abs); splat(f, 0x477ff000).simd(SimdOp.i32x4LtU).simd(SimdOp.v128And);
  f.simd(SimdOp.v128Bitselect).localSet(res);
  // Past the largest half (65520 <= |x| < inf): inf.
  splat(f, 0x7f800000);
  f.localGet(res);
  f.localGet(abs); splat(f, 0x477ff000).simd(SimdOp.i32x4GeU);
  f.localGet(abs); splat(f, 0x7f800000).simd(SimdOp.i32x4LtU).simd(SimdOp.v128And);
  f.simd(SimdOp.v128Bitselect);
  // The sign back (inf and NaN already have theirs).
  f.localGet(b); splat(f, 0x80000000 | 0).simd(SimdOp.v128And).simd(SimdOp.v128Or);
}

export function buildHalfRoundModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const m = new ModuleBuilder().importMemory(memory);
  for (const [name, format] of [[ROUND_BF16_EXPORT, 'bf16'], [ROUND_F16_EXPORT, 'f16']] as const) {
    const f = m.function({ params: [i32, i32], results: [] }, name);
    const ptr = 0, n = 1;
    const i = f.local(i32), end = f.local(i32), vecEnd = f.local(i32);
    const b = f.local(v128), abs = f.local(v128), res = f.local(v128);
    const round = (): void => (format === 'bf16' ? bf16(f, b) : f16(f, b, abs, res));
    f.localGet(ptr).localGet(n).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(end);
    f.localGet(ptr).localGet(n).i32Const(-4).op(Op.i32And).i32Const(2).op(Op.i32Shl).op(Op.i32Add).localSet(vecEnd);
    f.forRange(i, () => f.localGet(ptr), () => f.localGet(vecEnd), 16, () => {
      f.localGet(i).simdMem(SimdMemOp.v128Load, 0, 2).localSet(b);
      f.localGet(i);
      round();
      f.simdMem(SimdMemOp.v128Store, 0, 2);
    });
    f.forRange(i, () => f.localGet(vecEnd), () => f.localGet(end), 4, () => {
      f.localGet(i).simdMem(SimdMemOp.v128Load32Zero, 0, 2).localSet(b);
      f.localGet(i);
      round();
      f.simdLane(SimdLaneOp.i32x4ExtractLane, 0);
      f.mem(MemOp.i32Store, 0, 2);
    });
  }
  return m.encode();
}
