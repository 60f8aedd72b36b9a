// ONNX elementwise operators: arithmetic with numpy broadcasting, math functions, comparisons and
// logic, Where, BitShift, the Bitwise* operators, BitCast, Cast and CastLike, over tessera's
// elementwise ops (the bitwise ones and BitCast compute on the host; see there).
//
// ONNX integer types that tessera keeps in int32 storage (INT16, UINT16, UINT32, INT64, UINT64;
// value.ts) get their ONNX meaning here where it differs from int32's: 16-bit results wrap to 16
// bits, and UINT32/UINT64 values at or above 2^31 (stored negative) read as unsigned in Cast to a
// float type and in BitShift. Integer arithmetic that needs rounding (Div, Mod, Pow with a float
// exponent, wrapping) is computed in float64, which holds every int32 exactly. Cast also reaches
// the sub-byte integers (INT4, UINT4, INT2, UINT2, kept in 8-bit storage) and the FLOAT8/FLOAT4
// types (kept in float32 as the values the small format represents), rounding as ONNX does.

import type { Tensor } from '../../core/tensor.js';
import { isFloating, type DType, type TypedArray } from '../../core/dtype.js';
import { broadcastShapes } from '../../core/shape.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import { rawBytes, rawItemSize, rawValues } from '../tensor-proto.js';
import { NewElemType, integerRange, isFloatElemType, smallFloatFormat, storageDType, type SmallFloatFormat } from '../value.js';

// ---- helpers ---------------------------------------------------------------------------------

/**
 * The two operands of a binary op. Before opset 7 the arithmetic, comparison and logic ops did
 * not broadcast like numpy: with broadcast=1, B's axes lined up with A's from `axis` on (by
 * default, A's trailing axes), so B gets trailing size-1 axes to broadcast the numpy way.
 */
function binaryOperands(ctx: NodeContext): [Tensor, Tensor] {
  const a = ctx.tensor(0);
  const b = ctx.tensor(1);
  const axis = ctx.opset < 7 && ctx.int('broadcast', 0) === 1 ? ctx.int('axis') : undefined;
  if (axis === undefined) return [a, b];
  const start = axis < 0 ? axis + a.rank : axis;
  const trailing = a.rank - start - b.rank;
  if (start < 0 || trailing < 0) ctx.fail(`axis=${axis} does not fit B of shape [${b.shape.join(', ')}] into A of shape [${a.shape.join(', ')}]`);
  return [a, ops.reshape(b, [...b.shape, ...new Array<number>(trailing).fill(1)])];
}

/**
 * Integer values (exact, in any dtype) wrapped into the range of a type narrower than its storage
 * (16 bits in int32; 4 or 2 bits in int8/uint8), as two's complement does.
 */
function wrapInt(x: Tensor, type: number): Tensor {
  const { min, max } = integerRange(type)!;
  const span = max - min + 1;
  const v = ops.cast(x, 'float64');
  return ops.cast(ops.sub(v, ops.mul(ops.floor(ops.div(ops.sub(v, min), span)), span)), storageDType(type)!);
}

const is16Bit = (type: number): boolean => type === ElemType.INT16 || type === ElemType.UINT16;
const isSubByteInt = (type: number): boolean =>
  type === ElemType.INT4 || type === ElemType.UINT4 || type === NewElemType.INT2 || type === NewElemType.UINT2;

/**
 * An integer result fitted to the ONNX type it stands for: INT16/UINT16 live in int32 storage and
 * wrap to 16 bits (8- and 32-bit types wrap in their storage already).
 */
function fitToType(x: Tensor, type: number): Tensor {
  return is16Bit(type) ? wrapInt(x, type) : x;
}

/** Values as float64, reading UINT32/UINT64 values stored negative (2^31 and above) as unsigned. */
function unsignedAware(x: Tensor, type: number): Tensor {
  const v = ops.cast(x, 'float64');
  if (type !== ElemType.UINT32 && type !== ElemType.UINT64) return v;
  return ops.where(ops.lt(v, 0), ops.add(v, 2 ** 32), v);
}

/** f on a and b cast to float64 (exact for every int32), the result cast back to a's dtype. */
function viaFloat64(a: Tensor, b: Tensor, f: (x: Tensor, y: Tensor) => Tensor): Tensor {
  return ops.cast(f(ops.cast(a, 'float64'), ops.cast(b, 'float64')), a.dtype);
}

/** Registers a binary arithmetic op; the result of an integer op is fitted to the first input's type. */
function arithmetic(opType: string, f: (a: Tensor, b: Tensor) => Tensor): void {
  registerOnnxOp(opType, (ctx) => {
    const [a, b] = binaryOperands(ctx);
    return [fitToType(f(a, b), ctx.typeOf(0))];
  });
}

/** Registers a unary op that maps x to f(x) (ONNX restricts these to the types f handles). */
function unary(opType: string, f: (x: Tensor) => Tensor): void {
  registerOnnxOp(opType, (ctx) => [f(ctx.tensor(0))]);
}

/** Registers a comparison or logic op: a BOOL result of two broadcast operands. */
function predicate(opType: string, f: (a: Tensor, b: Tensor) => Tensor): void {
  registerOnnxOp(opType, (ctx) => {
    const [a, b] = binaryOperands(ctx);
    return [ctx.output(f(a, b), ElemType.BOOL)];
  });
}

/** Registers a variadic op (Max, Min, Sum, Mean): the inputs folded pairwise with numpy broadcasting. */
function variadic(opType: string, f: (a: Tensor, b: Tensor) => Tensor, finish: (x: Tensor, n: number) => Tensor = (x) => x): void {
  registerOnnxOp(opType, (ctx) => {
    const xs = ctx.tensors();
    if (xs.length === 0) ctx.fail('needs at least one input');
    return [fitToType(finish(xs.reduce((acc, x) => f(acc, x)), xs.length), ctx.typeOf(0))];
  });
}

// ---- arithmetic ------------------------------------------------------------------------------

arithmetic('Add', ops.add);
arithmetic('Sub', ops.sub);
arithmetic('Mul', ops.mul);

// Div: true division for floats; integers divide truncating toward zero (C semantics, as ONNX
// Runtime does; a division by zero gives 0, where ONNX leaves it undefined).
arithmetic('Div', (a, b) => (isFloating(a.dtype) ? ops.div(a, b) : viaFloat64(a, b, (x, y) => ops.trunc(ops.div(x, y)))));

// Mod: fmod=0 takes the sign of the divisor (Python's %), fmod=1 the sign of the dividend (C's
// fmod). ONNX requires fmod=1 for floats; fmod=0 on floats is taken as numpy's mod. Computed in
// float64; a zero divisor gives 0 for integers and NaN for floats.
registerOnnxOp('Mod', (ctx) => {
  const [a, b] = binaryOperands(ctx);
  const round = ctx.int('fmod', 0) === 1 ? ops.trunc : ops.floor;
  return [fitToType(viaFloat64(a, b, (x, y) => ops.sub(x, ops.mul(round(ops.div(x, y)), y))), ctx.typeOf(0))];
});

// Pow: the result has the base's type whatever the exponent's type. An integer base with a float
// exponent is computed in float64 and truncated back (numpy's power(x, y).astype(x.dtype)).
arithmetic('Pow', (base, exponent) => {
  if (isFloating(base.dtype)) return ops.pow(base, ops.cast(exponent, base.dtype));
  if (isFloating(exponent.dtype)) return viaFloat64(base, exponent, ops.pow);
  return ops.pow(base, ops.cast(exponent, base.dtype));
});

registerOnnxOp('Neg', (ctx) => [fitToType(ops.neg(ctx.tensor(0)), ctx.typeOf(0))]);
registerOnnxOp('Abs', (ctx) => [fitToType(ops.abs(ctx.tensor(0)), ctx.typeOf(0))]);
unary('Reciprocal', ops.reciprocal);
unary('Sqrt', ops.sqrt);
unary('Exp', ops.exp);
unary('Log', ops.log);
unary('Ceil', ops.ceil);
unary('Floor', ops.floor);
// Round: halves to the nearest even integer, as numpy.round.
unary('Round', ops.round);
// Sign: -1, 0 or 1 (NaN stays NaN).
unary('Sign', ops.sign);
// Erf: also defined on integer types, where the result is truncated back to the input's type.
unary('Erf', (x) => (isFloating(x.dtype) ? ops.erf(x) : ops.cast(ops.erf(x), x.dtype)));

// Max, Min: numpy's maximum/minimum (NaN propagates). Sum adds; Mean divides the sum by the count.
variadic('Max', ops.maximum);
variadic('Min', ops.minimum);
variadic('Sum', ops.add);
variadic('Mean', ops.add, (sum, n) => ops.div(sum, n));

// Clip: numpy's clip, min applied first (so min > max gives max everywhere); NaN stays NaN. Before
// opset 11, min and max are float attributes; from 11 on, optional scalar inputs of x's type.
registerOnnxOp('Clip', (ctx) => {
  const x = ctx.tensor(0);
  const min = ctx.opset < 11 ? ctx.float('min') : ctx.optionalTensor(1);
  const max = ctx.opset < 11 ? ctx.float('max') : ctx.optionalTensor(2);
  if (min === undefined && max === undefined) return [x];
  return [ops.clamp(x, min, max)];
});

// ---- trigonometric and hyperbolic functions ----------------------------------------------------
// tessera has sin, cos and tanh primitives; the others are composed from exp/log/sqrt and an
// arctangent series, each written to keep float32 precision across the domain (and NaN outside it).

/**
 * atan(x): |x| > 1 is mapped to π/2 − atan(1/|x|), two half-angle steps
 * atan(r) = 2·atan(r / (1 + sqrt(1 + r²))) bring r ≤ 1 below tan(π/16) ≈ 0.2, and the Taylor
 * series r − r³/3 + r⁵/5 − … finishes (6 terms reach float32 precision, 12 float64's).
 */
function atan(x: Tensor): Tensor {
  const a = ops.abs(x);
  const big = ops.gt(a, 1);
  // The reciprocal only sees a where it is taken (1 elsewhere), so 1/0 never arises.
  let r = ops.where(big, ops.reciprocal(ops.where(big, a, 1)), a);
  for (let i = 0; i < 2; i++) r = ops.div(r, ops.add(ops.sqrt(ops.add(ops.mul(r, r), 1)), 1));
  const terms = x.dtype === 'float64' ? 12 : 6;
  const r2 = ops.mul(r, r);
  let series: Tensor | number = (terms % 2 === 1 ? 1 : -1) / (2 * terms - 1);
  for (let k = terms - 2; k >= 0; k--) series = ops.add(ops.mul(r2, series), (k % 2 === 0 ? 1 : -1) / (2 * k + 1));
  const t = ops.mul(ops.mul(r, series), 4);
  const angle = ops.where(big, ops.sub(Math.PI / 2, t), t);
  return ops.where(ops.lt(x, 0), ops.neg(angle), angle);
}

const floatOf = (x: Tensor): Tensor => (isFloating(x.dtype) ? x : ops.cast(x, 'float32'));

unary('Sin', ops.sin);
unary('Cos', ops.cos);
unary('Tan', (x) => ops.div(ops.sin(x), ops.cos(x)));
unary('Atan', (x) => atan(floatOf(x)));
// asin(x) = atan(x / sqrt((1 − x)(1 + x))): ±1 gives ±π/2 through atan(±inf).
unary('Asin', (x) => {
  const xf = floatOf(x);
  return atan(ops.div(xf, ops.sqrt(ops.mul(ops.sub(1, xf), ops.add(xf, 1)))));
});
// acos(x) = 2·atan(sqrt((1 − x)/(1 + x))): accurate near both ends (π at −1 through atan(inf)).
unary('Acos', (x) => {
  const xf = floatOf(x);
  return ops.mul(atan(ops.sqrt(ops.div(ops.sub(1, xf), ops.add(xf, 1)))), 2);
});
// sinh(x) = (expm1(x) − expm1(−x))/2, which keeps its precision near 0.
unary('Sinh', (x) => ops.div(ops.sub(ops.expm1(x), ops.expm1(ops.neg(x))), 2));
unary('Cosh', (x) => ops.div(ops.add(ops.exp(x), ops.exp(ops.neg(x))), 2));
unary('Tanh', ops.tanh);
// asinh(x) = sign(x)·log1p(a + a²/(1 + sqrt(1 + a²))), a = |x|; above 2^26 (where a² might
// overflow) log(2a), equal to float64 precision there.
unary('Asinh', (x) => {
  const a = ops.abs(floatOf(x));
  const big = ops.gt(a, 2 ** 26);
  const s = ops.where(big, 0, a);
  const small = ops.log1p(ops.add(s, ops.div(ops.mul(s, s), ops.add(ops.sqrt(ops.add(ops.mul(s, s), 1)), 1))));
  const y = ops.where(big, ops.add(ops.log(a), Math.LN2), small);
  return ops.where(ops.lt(x, 0), ops.neg(y), y);
});
// acosh(x) = log1p(t + sqrt(t)·sqrt(t + 2)), t = x − 1 (exact near 1); NaN below 1. Above 2^26
// log(2x), as for asinh (the sum would overflow near the largest floats).
unary('Acosh', (x) => {
  const xf = floatOf(x);
  const big = ops.gt(xf, 2 ** 26);
  const t = ops.sub(ops.where(big, 1, xf), 1);
  const near = ops.log1p(ops.add(t, ops.mul(ops.sqrt(t), ops.sqrt(ops.add(t, 2)))));
  return ops.where(big, ops.add(ops.log(xf), Math.LN2), near);
});
// atanh(x) = (log1p(x) − log1p(−x))/2; ±inf at ±1, NaN beyond.
unary('Atanh', (x) => ops.div(ops.sub(ops.log1p(x), ops.log1p(ops.neg(x))), 2));

// ---- comparisons and logic -------------------------------------------------------------------

predicate('Equal', ops.eq);
predicate('Greater', ops.gt);
predicate('Less', ops.lt);
predicate('GreaterOrEqual', ops.ge);
predicate('LessOrEqual', ops.le);
predicate('And', ops.logicalAnd);
predicate('Or', ops.logicalOr);
predicate('Xor', (a, b) => ops.ne(ops.cast(a, 'bool'), ops.cast(b, 'bool')));
registerOnnxOp('Not', (ctx) => [ctx.output(ops.logicalNot(ctx.tensor(0)), ElemType.BOOL)]);

registerOnnxOp('IsNaN', (ctx) => [ctx.output(ops.isnan(ctx.tensor(0)), ElemType.BOOL)]);
// IsInf: detect_positive / detect_negative (both 1 by default) pick which infinities count.
registerOnnxOp('IsInf', (ctx) => {
  const x = ctx.tensor(0);
  const positive = ctx.int('detect_positive', 1) !== 0;
  const negative = ctx.int('detect_negative', 1) !== 0;
  const found = positive && negative ? ops.eq(ops.abs(x), Infinity)
    : positive ? ops.eq(x, Infinity)
      : negative ? ops.eq(x, -Infinity)
        : ops.zerosLike(x, { dtype: 'bool' });
  return [ctx.output(found, ElemType.BOOL)];
});

// Where: condition ? X : Y, the three broadcast together (numpy.where).
registerOnnxOp('Where', (ctx) => [ops.where(ctx.tensor(0), ctx.tensor(1), ctx.tensor(2))]);

// ---- bits ------------------------------------------------------------------------------------

const UNSIGNED_BITS: Partial<Record<number, number>> = {
  [ElemType.UINT8]: 8, [ElemType.UINT16]: 16, [ElemType.UINT32]: 32, [ElemType.UINT64]: 32,
};

// BitShift on unsigned integers: LEFT is x·2^s wrapped to the type's width, RIGHT is floor(x/2^s)
// (a logical shift). tessera has no bitwise primitives, so both are float64 arithmetic, which is
// exact for the 32 bits int32 storage holds (UINT64 keeps only values below 2^32).
registerOnnxOp('BitShift', (ctx) => {
  const type = ctx.typeOf(0);
  const bits = UNSIGNED_BITS[type];
  if (bits === undefined) ctx.fail(`X is ${ctx.typeName(type)}; BitShift takes UINT8, UINT16, UINT32 or UINT64`);
  const direction = ctx.string('direction', '');
  if (direction !== 'LEFT' && direction !== 'RIGHT') ctx.fail(`direction must be 'LEFT' or 'RIGHT', got '${direction}'`);
  const [x, y] = binaryOperands(ctx);
  const v = unsignedAware(x, type);
  const scale = ops.pow(2, unsignedAware(y, type));
  const shifted = direction === 'LEFT' ? ops.mul(v, scale) : ops.floor(ops.div(v, scale));
  // The casts to uint8 and int32 wrap modulo 2^8 and 2^32; 16 bits wrap here.
  return [bits === 16 ? wrapInt(shifted, type) : ops.cast(shifted, x.dtype)];
});

// ---- bitwise operators and BitCast --------------------------------------------------------------
// tessera has no bitwise primitives, so these read the integer values to the host, compute with
// JavaScript's 32-bit bitwise operators and make a new tensor on the input's backend (they are not
// differentiable, and do not trace under jit).

/** An integer result of JavaScript's 32-bit bit operators fitted to its ONNX type (two's complement). */
function fitBits(v: number, type: number): number {
  const { min, max } = integerRange(type)!;
  const bits = Math.round(Math.log2(max - min + 1));
  if (bits >= 32) return v | 0;
  return min < 0 ? (v << (32 - bits)) >> (32 - bits) : v & ((1 << bits) - 1);
}

/** Host values as a tensor of an ONNX type's storage on `backend`. */
function hostTensor(values: ArrayLike<number>, shape: readonly number[], type: number, backend: string): Tensor {
  const dtype = storageDType(type)!;
  let storage: TypedArray;
  switch (dtype) {
    case 'float64': storage = Float64Array.from(values); break;
    case 'float32': case 'float16': case 'bfloat16': storage = Float32Array.from(values); break;
    case 'int8': storage = Int8Array.from(values); break;
    case 'uint8': storage = Uint8Array.from(values); break;
    case 'bool': storage = Uint8Array.from(values, (v) => (v !== 0 ? 1 : 0)); break;
    case 'int32': storage = Int32Array.from(values); break;
  }
  return ops.fromValues(storage, shape, dtype, { backend });
}

/** Fails unless `type` is an integer type (the bitwise operators' T). */
function requireInteger(ctx: NodeContext, type: number): void {
  if (integerRange(type) === undefined) ctx.fail(`the input is ${ctx.typeName(type)}; the bitwise operators take integer types`);
}

/** Registers a binary bitwise op: f on the (numpy-broadcast) integer inputs' bits. */
function bitwise(opType: string, f: (a: number, b: number) => number): void {
  registerOnnxOp(opType, (ctx) => {
    const type = ctx.typeOf(0);
    requireInteger(ctx, type);
    const a = ctx.tensor(0), b = ctx.tensor(1);
    const shape = broadcastShapes(opType, a.shape, b.shape);
    const av = ops.expand(a, shape).data(), bv = ops.expand(b, shape).data();
    const out = new Array<number>(av.length);
    for (let i = 0; i < out.length; i++) out[i] = fitBits(f(Number(av[i]), Number(bv[i])), type);
    return [ctx.output(hostTensor(out, shape, type, a.backend), type)];
  });
}

bitwise('BitwiseAnd', (a, b) => a & b);
bitwise('BitwiseOr', (a, b) => a | b);
bitwise('BitwiseXor', (a, b) => a ^ b);
registerOnnxOp('BitwiseNot', (ctx) => {
  const type = ctx.typeOf(0);
  requireInteger(ctx, type);
  const x = ctx.tensor(0);
  return [ctx.output(hostTensor(Array.from(x.data(), (v) => fitBits(~Number(v), type)), x.shape, type, x.backend), type)];
});

/**
 * BitCast (opset 26): the input's bits reinterpreted as type `to` of the same width (FLOAT ↔ INT32,
 * INT8 ↔ UINT8, FLOAT16 ↔ INT16, ...), through the little-endian bytes of TensorProto's raw data.
 * 64-bit integers are refused: tessera keeps INT64/UINT64 in int32, so their bits are not all there.
 */
registerOnnxOp('BitCast', (ctx) => {
  const from = ctx.typeOf(0), to = ctx.requiredInt('to');
  if (from === to) return [ctx.input(0)];
  for (const t of [from, to]) {
    if (t === ElemType.INT64 || t === ElemType.UINT64) ctx.fail(`BitCast from ${ctx.typeName(from)} to ${ctx.typeName(to)}: tessera keeps ${ctx.typeName(t)} in int32, so a 64-bit pattern cannot be held`);
    if (rawItemSize(t) === 0 || storageDType(t) === undefined) ctx.fail(`BitCast of ${ctx.typeName(t)} is not supported; it takes the numeric types of one byte or more`);
  }
  if (rawItemSize(from) !== rawItemSize(to)) ctx.fail(`${ctx.typeName(from)} and ${ctx.typeName(to)} differ in width (${rawItemSize(from)} and ${rawItemSize(to)} bytes)`);
  const x = ctx.tensor(0);
  const values = rawValues(rawBytes(from, x.data()), to, x.size, `BitCast's input`);
  return [ctx.output(hostTensor(values, x.shape, to, x.backend), to)];
});

// ---- casts -----------------------------------------------------------------------------------

/** 2^k for the integers k in [lo, hi], exact, as a 1-D table of x's float dtype on x's backend. */
function powersOfTwo(lo: number, hi: number, x: Tensor): Tensor {
  const values = Array.from({ length: hi - lo + 1 }, (_, i) => 2 ** (lo + i));
  return ops.tensor(x.dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values), { dtype: x.dtype, backend: x.backend });
}

/** table[index] for a 1-D table and an int32 index tensor of any shape. */
function lookup(table: Tensor, index: Tensor): Tensor {
  return ops.reshape(ops.indexSelect(table, 0, ops.reshape(index, [index.size])), index.shape);
}

/**
 * floor(log2 a) of a ≥ 0 (int32), clamped to [lo, hi]; `table` is powersOfTwo(lo, hi). log() gives
 * a guess that may be one off near powers of two; comparing a with the exact powers corrects it.
 */
function binade(a: Tensor, lo: number, hi: number, table: Tensor): Tensor {
  const guess = ops.cast(ops.clamp(ops.floor(ops.div(ops.log(a), Math.LN2)), lo, hi), 'int32');
  const p = lookup(table, ops.sub(guess, lo));
  const tooHigh = ops.logicalAnd(ops.lt(a, p), ops.gt(guess, lo));
  const tooLow = ops.logicalAnd(ops.ge(a, ops.mul(p, 2)), ops.lt(guess, hi));
  return ops.add(ops.sub(guess, ops.cast(tooHigh, 'int32')), ops.cast(tooLow, 'int32'));
}

/** x as float32 (float64 stays), reading UINT32/UINT64 values stored negative as unsigned. */
function asFloat(x: Tensor, type: number): Tensor {
  const v = type === ElemType.UINT32 || type === ElemType.UINT64 ? unsignedAware(x, type) : x;
  return v.dtype === 'float64' ? v : ops.cast(v, 'float32');
}

/**
 * Float values (float32 or float64) rounded to a FLOAT8/FLOAT4 format, as ONNX's Cast does: to
 * the nearest representable value, ties to even (subnormals included), kept in x's dtype. Beyond
 * the largest finite value (±inf included): that value when `saturate` (and always for FLOAT4E2M1,
 * which has no inf or NaN), else ±inf (E5M2) or NaN (the formats without inf). NaN stays NaN
 * (FLOAT4E2M1: 0). QuantizeLinear to these types rounds the same way.
 */
export function toSmallFloat(x: Tensor, f: SmallFloatFormat, saturate: boolean): Tensor {
  const nan = ops.isnan(x);
  const a = ops.where(nan, 0, ops.abs(x));
  // The binades from the lowest normal one (whose quantum the subnormals share) to one past the largest.
  const lo = 1 - f.bias, hi = Math.floor(Math.log2(f.max)) + 1;
  const table = powersOfTwo(lo, hi, x);
  const quantum = ops.div(lookup(table, ops.sub(binade(a, lo, hi, table), lo)), 2 ** f.mantissaBits);
  const rounded = ops.mul(ops.round(ops.div(a, quantum)), quantum);
  const overflow = saturate || f.special === 'none' ? f.max : f.special === 'ieee' ? Infinity : NaN;
  const r = ops.where(ops.gt(rounded, f.max), overflow, rounded);
  return ops.where(nan, f.special === 'none' ? 0 : NaN, ops.where(ops.lt(x, 0), ops.neg(r), r));
}

/**
 * Float values as FLOAT8E8M0 (the powers of two 2^-127 .. 2^127; the sign is dropped): round_mode
 * 'up' takes the power of two at or above |x|, 'down' the one at or below, 'nearest' rounds the
 * mantissa (1.5·2^e and above go up). Below 2^-127 (0 included) gives 2^-127; beyond 2^127 (inf
 * included) 2^127 when `saturate`, else NaN. NaN stays NaN.
 */
function toE8M0(x: Tensor, saturate: boolean, mode: string): Tensor {
  const nan = ops.isnan(x);
  const a = ops.where(nan, 0, ops.abs(x));
  const table = powersOfTwo(-127, 127, x);
  const e = binade(a, -127, 127, table);
  const p = lookup(table, ops.add(e, 127));
  const up = mode === 'up' ? ops.gt(a, p) : mode === 'nearest' ? ops.ge(a, ops.mul(p, 1.5)) : ops.zerosLike(a, { dtype: 'bool' });
  const exponent = ops.add(e, ops.cast(up, 'int32'));
  const overflow = ops.logicalOr(ops.gt(exponent, 127), ops.eq(a, Infinity));
  const r = ops.where(overflow, saturate ? 2 ** 127 : NaN, lookup(table, ops.add(ops.clamp(exponent, -127, 127), 127)));
  return ops.where(nan, NaN, r);
}

/** Cast's options for the small float types: saturate (opset 19 on, default 1) and round_mode (opset 25, for FLOAT8E8M0). */
interface CastOptions {
  readonly saturate: boolean;
  readonly roundMode: string;
}

function castOptions(ctx: NodeContext): CastOptions {
  const roundMode = ctx.string('round_mode', 'up');
  if (roundMode !== 'up' && roundMode !== 'down' && roundMode !== 'nearest') ctx.fail(`round_mode must be 'up', 'down' or 'nearest', got '${roundMode}'`);
  return { saturate: ctx.int('saturate', 1) !== 0, roundMode };
}

/**
 * x (of ONNX type `from`) cast to ONNX type `to`, as numpy's astype does: to BOOL is x != 0; float
 * to integer truncates toward zero; integers wrap to the target's width (4 and 2 bits included);
 * UINT32/UINT64 values read as unsigned. To the FLOAT8/FLOAT4 types values round as toSmallFloat
 * and toE8M0 describe. Types tessera cannot hold (STRING, complex) fail.
 */
function castTo(ctx: NodeContext, x: Tensor, from: number, to: number, options: CastOptions): Tensor {
  if (to === ElemType.STRING || from === ElemType.STRING) ctx.fail('casts from or to STRING are not supported: tessera tensors hold numbers only');
  const dtype: DType | undefined = storageDType(to);
  if (dtype === undefined) {
    ctx.fail(`cannot cast to ${ctx.typeName(to)}: tessera holds FLOAT, DOUBLE, FLOAT16, BFLOAT16, the FLOAT8/FLOAT4 types, BOOL and the integer types (INT64/UINT64 within 32 bits)`);
  }
  if (from === to) return x;
  const format = smallFloatFormat(to);
  if (format !== undefined) return toSmallFloat(asFloat(x, from), format, options.saturate);
  if (to === NewElemType.FLOAT8E8M0) return toE8M0(asFloat(x, from), options.saturate, options.roundMode);
  if (isFloatElemType(to)) return ops.cast(from === ElemType.UINT32 || from === ElemType.UINT64 ? unsignedAware(x, from) : x, dtype);
  if (is16Bit(to) || isSubByteInt(to)) return wrapInt(isFloating(x.dtype) ? ops.trunc(ops.cast(x, 'float64')) : x, to);
  // bool, int8, uint8 and int32 casts truncate floats and wrap integers themselves.
  return ops.cast(x, dtype);
}

/** The 'to' attribute: an ElemType number, or before opset 6 a type name such as 'FLOAT'. */
function castTarget(ctx: NodeContext): number {
  if (ctx.opset >= 6) return ctx.requiredInt('to');
  const name = ctx.string('to');
  if (name === undefined) ctx.fail("the required attribute 'to' is missing");
  const type = ElemType[name.toUpperCase() as keyof typeof ElemType] as number | undefined;
  if (type === undefined) ctx.fail(`'to' names an unknown type '${name}'`);
  return type;
}

registerOnnxOp('Cast', (ctx) => {
  const to = castTarget(ctx);
  return [ctx.output(castTo(ctx, ctx.tensor(0), ctx.typeOf(0), to, castOptions(ctx)), to)];
});

// CastLike: Cast to the type of the second input (with Cast's saturate and round_mode).
registerOnnxOp('CastLike', (ctx) => {
  const to = ctx.typeOf(1);
  return [ctx.output(castTo(ctx, ctx.tensor(0), ctx.typeOf(0), to, castOptions(ctx)), to)];
});

// Identity belongs to the shape ops; it stays here until they take it.
registerOnnxOp('Identity', (ctx) => [ctx.value(0)]);
