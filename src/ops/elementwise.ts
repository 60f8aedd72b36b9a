// Elementwise ops with broadcasting and PyTorch type promotion, as functions and Tensor methods.
import { type DType, defaultFloatDType, isFloating, promoteTypes, promoteWithScalar } from '../core/dtype.js';
import { check } from '../core/errors.js';
import { broadcastShapes, shapesEqual } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { bind, releaseTemporaries } from './dispatch.js';
import { scalar } from './creation.js';
import type { BinaryArithOp, BinaryCompareOp, UnaryFloatOp, UnarySameOp } from './primitives.js';

export type TensorLike = Tensor | number | boolean;

/** Casts to `dtype` (a no-op returning the same tensor when it already has it). */
export function cast(x: Tensor, dtype: DType): Tensor {
  return x.dtype === dtype ? x : bind('cast', [x], { dtype });
}

/** Broadcasts a tensor to `shape` with a zero-copy expand (no-op when the shape already matches). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  return shapesEqual(x.shape, shape) ? x : bind('expand', [x], { shape: [...shape] });
}

/** The dtype two operands promote to (tensors are "strong", JS numbers "weak" like in PyTorch). */
export function resultType(a: TensorLike, b: TensorLike): DType {
  if (a instanceof Tensor && b instanceof Tensor) {
    // A 0-d tensor does not raise the dtype of a higher-rank tensor of the same kind (PyTorch's rule).
    if (a.rank === 0 && b.rank > 0 && sameKind(a.dtype, b.dtype)) return b.dtype;
    if (b.rank === 0 && a.rank > 0 && sameKind(a.dtype, b.dtype)) return a.dtype;
    return promoteTypes(a.dtype, b.dtype);
  }
  if (a instanceof Tensor) return promoteWithScalar(a.dtype, b as number | boolean);
  if (b instanceof Tensor) return promoteWithScalar(b.dtype, a as number | boolean);
  return promoteWithScalar(typeof a === 'boolean' ? 'bool' : Number.isInteger(a) ? 'int32' : defaultFloatDType(), b as number);
}

function sameKind(a: DType, b: DType): boolean {
  const kind = (d: DType): number => (d === 'bool' ? 0 : isFloating(d) ? 2 : 1);
  return kind(a) === kind(b);
}

function backendOf(...xs: TensorLike[]): string | undefined {
  for (const x of xs) if (x instanceof Tensor) return x.backend;
  return undefined;
}

/**
 * Turns operands into tensors of one dtype and one (broadcast) shape. The tensors made on the way
 * (a number as a scalar tensor, casts, broadcast views) are appended to `made`, if given.
 */
export function alignOperands(op: string, xs: TensorLike[], dtype: DType, made?: Tensor[]): Tensor[] {
  const backend = backendOf(...xs);
  const ts = xs.map((x) => {
    const t = x instanceof Tensor ? cast(x, dtype) : scalar(x, dtype, backend);
    if (t !== x) made?.push(t);
    return t;
  });
  const shape = broadcastShapes(op, ...ts.map((t) => t.shape));
  return ts.map((t) => {
    const b = broadcastTo(t, shape);
    if (b !== t) made?.push(b);
    return b;
  });
}

function binaryArith(op: BinaryArithOp, a: TensorLike, b: TensorLike, dtype = resultType(a, b)): Tensor {
  if (dtype === 'bool') {
    // PyTorch keeps bool: True + True is True (or), True * False is False (and); subtraction is refused.
    check(op !== 'sub', 'sub', () => 'subtracting two bool tensors is not supported; to invert a mask use logicalNot(), or cast to int32 first.');
    return cast(binaryArith(op, cast(toTensor(a), 'int32'), cast(toTensor(b), 'int32'), 'int32'), 'bool');
  }
  const made: Tensor[] = [];
  const [x, y] = alignOperands(op, [a, b], dtype, made);
  return releaseTemporaries(made, bind(op, [x!, y!], {}));
}

function compare(op: BinaryCompareOp, a: TensorLike, b: TensorLike): Tensor {
  const dtype = op === 'logicalAnd' || op === 'logicalOr' ? 'bool' : resultType(a, b);
  const made: Tensor[] = [];
  const [x, y] = alignOperands(op, [a, b], dtype, made);
  return releaseTemporaries(made, bind(op, [x!, y!], {}));
}

function toTensor(x: TensorLike, like?: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  return scalar(x, typeof x === 'boolean' ? 'bool' : like?.dtype ?? defaultFloatDType(), like?.backend);
}

export const add = (a: TensorLike, b: TensorLike): Tensor => binaryArith('add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binaryArith('sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => binaryArith('mul', a, b);
export const maximum = (a: TensorLike, b: TensorLike): Tensor => binaryArith('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => binaryArith('minimum', a, b);
/**
 * ReLU's vjp in one kernel: g where x > 0, else 0 (also for NaN x), the same values as
 * where(gt(x, 0), g, 0) without the bool tensor and the broadcast zero.
 */
export const reluGrad = (x: TensorLike, g: TensorLike): Tensor => binaryArith('reluGrad', x, g);

export interface DivOptions {
  /** undefined: true division (integers give floats); 'trunc' or 'floor': rounded, keeping integer dtypes. */
  roundingMode?: 'trunc' | 'floor';
}

/** Division like torch.div: true division by default (int / int gives float). */
export function div(a: TensorLike, b: TensorLike, opts: DivOptions = {}): Tensor {
  const rt = resultType(a, b);
  if (opts.roundingMode === undefined) return binaryArith('div', a, b, isFloating(rt) ? rt : defaultFloatDType());
  if (isFloating(rt)) {
    const q = binaryArith('div', a, b, rt);
    return opts.roundingMode === 'floor' ? floor(q) : trunc(q);
  }
  // Integer division: compute exactly in float64, round, cast back; division by zero is an error as in PyTorch.
  const [x, y] = alignOperands('div', [a, b], 'float64');
  check(!y!.data().some((v) => v === 0), 'div', () => 'integer division by zero.');
  const q = bind('div', [x!, y!], {});
  return cast(opts.roundingMode === 'floor' ? floor(q) : trunc(q), rt);
}

/** floor(a / b), keeping integer dtypes (Python's //). */
export const floorDivide = (a: TensorLike, b: TensorLike): Tensor => div(a, b, { roundingMode: 'floor' });

/** Python-style remainder: a - floor(a/b)*b, with the sign of the divisor. */
export function remainder(a: TensorLike, b: TensorLike): Tensor {
  return sub(a, mul(floorDivide(a, b), b));
}

export function pow(a: TensorLike, b: TensorLike): Tensor {
  return binaryArith('pow', a, b);
}

export const eq = (a: TensorLike, b: TensorLike): Tensor => compare('eq', a, b);
export const ne = (a: TensorLike, b: TensorLike): Tensor => compare('ne', a, b);
export const lt = (a: TensorLike, b: TensorLike): Tensor => compare('lt', a, b);
export const le = (a: TensorLike, b: TensorLike): Tensor => compare('le', a, b);
export const gt = (a: TensorLike, b: TensorLike): Tensor => compare('gt', a, b);
export const ge = (a: TensorLike, b: TensorLike): Tensor => compare('ge', a, b);
export const logicalAnd = (a: TensorLike, b: TensorLike): Tensor => compare('logicalAnd', a, b);
export const logicalOr = (a: TensorLike, b: TensorLike): Tensor => compare('logicalOr', a, b);
export const logicalNot = (x: Tensor): Tensor => bind('logicalNot', [cast(x, 'bool')], {});
export const isnan = (x: Tensor): Tensor => bind('isnan', [x], {});

/** cond ? x : y elementwise, broadcasting all three. */
export function where(cond: TensorLike, x: TensorLike, y: TensorLike): Tensor {
  const c = cast(toTensor(cond), 'bool');
  const dtype = resultType(x, y);
  const shape = broadcastShapes('where', c.shape, x instanceof Tensor ? x.shape : [], y instanceof Tensor ? y.shape : []);
  const [xx, yy] = alignOperands('where', [x, y], dtype).map((t) => broadcastTo(t, shape));
  return bind('where', [broadcastTo(c, shape), xx!, yy!], {});
}

function unaryFloat(op: UnaryFloatOp, x: Tensor): Tensor {
  return bind(op, [isFloating(x.dtype) ? x : cast(x, defaultFloatDType())], {});
}
function unarySame(op: UnarySameOp, x: Tensor): Tensor {
  check(x.dtype !== 'bool' || op === 'abs', op, () => `not defined for bool tensors; cast to int32 or float first.`);
  return bind(op, [x], {});
}

export const neg = (x: Tensor): Tensor => unarySame('neg', x);
export const abs = (x: Tensor): Tensor => unarySame('abs', x);
/** -1, 0 or 1 (NaN stays NaN); a bool tensor is its own sign, as in PyTorch. */
export const sign = (x: Tensor): Tensor => (x.dtype === 'bool' ? bind('contiguous', [x], {}) : unarySame('sign', x));
export const floor = (x: Tensor): Tensor => (isFloating(x.dtype) ? unarySame('floor', x) : x);
export const ceil = (x: Tensor): Tensor => (isFloating(x.dtype) ? unarySame('ceil', x) : x);
/** Rounds half to even, like torch.round. */
export const round = (x: Tensor): Tensor => (isFloating(x.dtype) ? unarySame('round', x) : x);
export const trunc = (x: Tensor): Tensor => (isFloating(x.dtype) ? mul(sign(x), floor(abs(x))) : x);
export const relu = (x: Tensor): Tensor => unarySame('relu', x);
export const exp = (x: Tensor): Tensor => unaryFloat('exp', x);
export const log = (x: Tensor): Tensor => unaryFloat('log', x);
export const log1p = (x: Tensor): Tensor => unaryFloat('log1p', x);
export const expm1 = (x: Tensor): Tensor => unaryFloat('expm1', x);
export const sqrt = (x: Tensor): Tensor => unaryFloat('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unaryFloat('rsqrt', x);
export const sin = (x: Tensor): Tensor => unaryFloat('sin', x);
export const cos = (x: Tensor): Tensor => unaryFloat('cos', x);
export const tanh = (x: Tensor): Tensor => unaryFloat('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unaryFloat('sigmoid', x);
export const erf = (x: Tensor): Tensor => unaryFloat('erf', x);
/** d/dx gelu(x) = Φ(x) + x·φ(x) (the exact GELU's derivative, one kernel). */
export const geluGrad = (x: Tensor): Tensor => unaryFloat('geluGrad', x);
/** gelu''(x) = φ(x)·(2 − x²), for second derivatives through gelu. */
export const geluSecondDerivative = (x: Tensor): Tensor => mul(mul(exp(mul(mul(x, x), -0.5)), 0.3989422804014327), sub(2, mul(x, x)));
export const square = (x: Tensor): Tensor => mul(x, x);
export const reciprocal = (x: Tensor): Tensor => div(1, x);

export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return where(gt(x, 0), x, mul(x, negativeSlope));
}

/** GELU: exact (erf) by default, or the tanh approximation. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  if (approximate === 'tanh') {
    const inner = mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return mul(mul(x, 0.5), add(tanh(inner), 1));
  }
  return unaryFloat('gelu', x);
}

export const silu = (x: Tensor): Tensor => mul(x, sigmoid(x));

/** log(1 + exp(beta*x))/beta, linear above `threshold` (PyTorch's defaults: beta 1, threshold 20). */
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  const bx = mul(x, beta);
  // log1p(exp(z)) for z <= 0 and z + log1p(exp(-z)) for z > 0: each branch only sees arguments
  // where it cannot overflow (so no inf·0 = NaN leaks through `where` into gradients), and unlike
  // relu(z) + log1p(exp(-|z|)) it has no kinks at 0, so the derivative there is sigmoid(0) = 1/2.
  const nonPositive = le(bx, 0);
  const low = where(nonPositive, bx, 0);
  const high = where(nonPositive, 0, bx);
  const stable = div(where(nonPositive, log1p(exp(low)), add(high, log1p(exp(neg(high))))), beta);
  return where(gt(bx, threshold), x, stable);
}

/** Clamps into [min, max]; the gradient is 1 inside the closed interval (as in PyTorch). */
export function clamp(x: Tensor, min?: TensorLike, max?: TensorLike): Tensor {
  check(min !== undefined || max !== undefined, 'clamp', () => 'give at least one of min and max.');
  // The bounds take part in type promotion, as in PyTorch: clamp(int tensor, 0.5) is float.
  let out = x;
  const bound = (b: TensorLike): Tensor => (b instanceof Tensor ? b : scalar(b, out.dtype, out.backend));
  if (min !== undefined) {
    out = cast(out, resultType(out, min));
    out = where(lt(out, min), bound(min), out);
  }
  if (max !== undefined) {
    out = cast(out, resultType(out, max));
    out = where(gt(out, max), bound(max), out);
  }
  return out;
}

declare module '../core/tensor.js' {
  interface Tensor {
    add(other: TensorLike): Tensor;
    sub(other: TensorLike): Tensor;
    mul(other: TensorLike): Tensor;
    div(other: TensorLike, opts?: DivOptions): Tensor;
    pow(other: TensorLike): Tensor;
    maximum(other: TensorLike): Tensor;
    minimum(other: TensorLike): Tensor;
    eq(other: TensorLike): Tensor;
    ne(other: TensorLike): Tensor;
    lt(other: TensorLike): Tensor;
    le(other: TensorLike): Tensor;
    gt(other: TensorLike): Tensor;
    ge(other: TensorLike): Tensor;
    logicalAnd(other: TensorLike): Tensor;
    logicalOr(other: TensorLike): Tensor;
    logicalNot(): Tensor;
    isnan(): Tensor;
    neg(): Tensor;
    abs(): Tensor;
    sign(): Tensor;
    floor(): Tensor;
    ceil(): Tensor;
    round(): Tensor;
    relu(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    log1p(): Tensor;
    expm1(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    square(): Tensor;
    clamp(min?: TensorLike, max?: TensorLike): Tensor;
    erf(): Tensor;
    trunc(): Tensor;
    reciprocal(): Tensor;
    remainder(other: TensorLike): Tensor;
    floorDivide(other: TensorLike): Tensor;
    leakyRelu(negativeSlope?: number): Tensor;
    gelu(approximate?: 'none' | 'tanh'): Tensor;
    silu(): Tensor;
    softplus(beta?: number, threshold?: number): Tensor;
    /** `this` where `condition` holds, `other` elsewhere (torch.Tensor.where). */
    where(condition: TensorLike, other: TensorLike): Tensor;
    cast(dtype: DType): Tensor;
    /** Cast to float32. */
    float(): Tensor;
    /** Cast to float64. */
    double(): Tensor;
    /** Cast to int32. */
    int(): Tensor;
    bool(): Tensor;
  }
}

const P = Tensor.prototype;
P.add = function (o) { return add(this, o); };
P.sub = function (o) { return sub(this, o); };
P.mul = function (o) { return mul(this, o); };
P.div = function (o, opts) { return div(this, o, opts); };
P.pow = function (o) { return pow(this, o); };
P.maximum = function (o) { return maximum(this, o); };
P.minimum = function (o) { return minimum(this, o); };
P.eq = function (o) { return eq(this, o); };
P.ne = function (o) { return ne(this, o); };
P.lt = function (o) { return lt(this, o); };
P.le = function (o) { return le(this, o); };
P.gt = function (o) { return gt(this, o); };
P.ge = function (o) { return ge(this, o); };
P.logicalAnd = function (o) { return logicalAnd(this, o); };
P.logicalOr = function (o) { return logicalOr(this, o); };
P.logicalNot = function () { return logicalNot(this); };
P.isnan = function () { return isnan(this); };
P.neg = function () { return neg(this); };
P.abs = function () { return abs(this); };
P.sign = function () { return sign(this); };
P.floor = function () { return floor(this); };
P.ceil = function () { return ceil(this); };
P.round = function () { return round(this); };
P.relu = function () { return relu(this); };
P.exp = function () { return exp(this); };
P.log = function () { return log(this); };
P.log1p = function () { return log1p(this); };
P.expm1 = function () { return expm1(this); };
P.sqrt = function () { return sqrt(this); };
P.rsqrt = function () { return rsqrt(this); };
P.sin = function () { return sin(this); };
P.cos = function () { return cos(this); };
P.tanh = function () { return tanh(this); };
P.sigmoid = function () { return sigmoid(this); };
P.square = function () { return square(this); };
P.clamp = function (min, max) { return clamp(this, min, max); };
P.erf = function () { return erf(this); };
P.trunc = function () { return trunc(this); };
P.reciprocal = function () { return reciprocal(this); };
P.remainder = function (o) { return remainder(this, o); };
P.floorDivide = function (o) { return floorDivide(this, o); };
P.leakyRelu = function (s) { return leakyRelu(this, s); };
P.gelu = function (a) { return gelu(this, a); };
P.silu = function () { return silu(this); };
P.softplus = function (b, th) { return softplus(this, b, th); };
P.where = function (c, o) { return where(c, this, o); };
P.cast = function (dtype) { return cast(this, dtype); };
P.float = function () { return cast(this, 'float32'); };
P.double = function () { return cast(this, 'float64'); };
P.int = function () { return cast(this, 'int32'); };
P.bool = function () { return cast(this, 'bool'); };
