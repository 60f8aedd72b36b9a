// Conversions between numbers and the bit patterns of IEEE half precision (float16) and bfloat16.
// Tensors keep these dtypes as float32 values (see core/dtype.ts); files store them as 16-bit patterns.
// Both directions are exact for values already rounded to the format; others round to nearest, ties to
// even, as hardware does.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bit pattern nearest to x (overflow → ±Infinity, NaN → a quiet NaN). */
export function float16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero) in float16: shift the 24-bit significand down to units of 2^-24.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the significand correctly bumps the exponent (up to Infinity).
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** The number a float16 bit pattern stands for. */
export function float16FromBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m !== 0 ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** The bfloat16 bit pattern nearest to x (the top half of float32, rounded to nearest even). */
export function bfloat16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if (Number.isNaN(f32[0]!)) return ((b >>> 16) & 0x8000) | 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The number a bfloat16 bit pattern stands for. */
export function bfloat16FromBits(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** Converts numbers to 16-bit patterns of `format`. */
export function toHalfBits(values: ArrayLike<number>, format: 'float16' | 'bfloat16'): Uint16Array {
  const out = new Uint16Array(values.length);
  const encode = format === 'float16' ? float16Bits : bfloat16Bits;
  for (let i = 0; i < values.length; i++) out[i] = encode(values[i]!);
  return out;
}

/** Converts 16-bit patterns of `format` to float32 values (exact: every half value is a float32). */
export function fromHalfBits(bits: Uint16Array, format: 'float16' | 'bfloat16'): Float32Array {
  const out = new Float32Array(bits.length);
  const decode = format === 'float16' ? float16FromBits : bfloat16FromBits;
  for (let i = 0; i < bits.length; i++) out[i] = decode(bits[i]!);
  return out;
}
