// torch.nn.functional's activations beyond relu/gelu/silu/softplus (src/ops/elementwise.ts), each a
// composite of primitives. Piecewise ones pick their branches with `where` so that the gradient at
// a kink is the one PyTorch's hand-written backward gives (noted per op), and every branch is
// evaluated on safe arguments (an inf in the branch not taken would turn its zero cotangent into NaN).
import { defaultFloatDType, isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import { normalizeAxis } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import {
  abs, add, cast, clamp, div, expm1, ge, gt, le, logicalAnd, lt, mul, neg, sigmoid, softplus, sub, tanh, where,
} from '../elementwise.js';
import { split } from '../combine.js';
import { detach, reshape } from '../shape.js';
import { softmax, type SoftmaxOptions } from './softmax.js';
import { withGradientOf } from './straight-through.js';

function checkFloating(op: string, x: Tensor): void {
  check(isFloating(x.dtype), op, () => `needs a floating input, got ${x.dtype} of shape ${fmtShape(x.shape)}; cast it first, e.g. x.float().`);
}

/**
 * x for x > 0, negCoef·expm1(x·inputScale) otherwise: PyTorch's one ELU kernel behind elu, selu
 * and celu. At x = 0 the gradient is the negative branch's (negCoef·inputScale), as in PyTorch.
 */
function eluFamily(op: string, x: Tensor, posCoef: number, negCoef: number, inputScale: number): Tensor {
  checkFloating(op, x);
  const positive = gt(x, 0);
  const neg = expm1(mul(where(positive, 0, x), inputScale)); // 0 where x > 0, so exp never overflows
  return where(positive, posCoef === 1 ? x : mul(x, posCoef), mul(neg, negCoef));
}

/** ELU: x for x > 0, alpha·(exp(x) − 1) otherwise (torch.nn.functional.elu). */
export function elu(x: Tensor, alpha = 1): Tensor {
  return eluFamily('elu', x, 1, alpha, 1);
}

// Klambauer et al. (2017), as written in PyTorch's Activation.cpp.
const SELU_ALPHA = 1.6732632423543772848170429916717;
const SELU_SCALE = 1.0507009873554804934193349852946;

/** SELU: scale·elu(x, alpha) with the self-normalising constants. */
export function selu(x: Tensor): Tensor {
  return eluFamily('selu', x, SELU_SCALE, SELU_ALPHA * SELU_SCALE, 1);
}

/** CELU: max(0, x) + min(0, alpha·(exp(x/alpha) − 1)); alpha must not be 0. */
export function celu(x: Tensor, alpha = 1): Tensor {
  check(alpha !== 0, 'celu', () => 'alpha cannot be 0 (it divides x); use a nonzero alpha, e.g. 1.');
  return eluFamily('celu', x, 1, alpha, 1 / alpha);
}

/** Mish: x·tanh(softplus(x)). */
export function mish(x: Tensor): Tensor {
  checkFloating('mish', x);
  return mul(x, tanh(softplus(x)));
}

/**
 * Clamps into [minVal, maxVal] with PyTorch's hardtanh gradient: 1 strictly inside, 0 at and beyond
 * the bounds (clamp's gradient is 1 on the closed interval, so this is not clamp). Integer tensors
 * are clamped as they are, as in PyTorch.
 */
export function hardtanh(x: Tensor, minVal = -1, maxVal = 1): Tensor {
  check(x.dtype !== 'bool', 'hardtanh', () => 'not defined for bool tensors; cast to float first.');
  if (!isFloating(x.dtype)) return clamp(x, minVal, maxVal);
  const inside = logicalAnd(gt(x, minVal), lt(x, maxVal));
  // The detached clamp carries the bound (and NaN) without a gradient.
  return where(inside, x, detach(clamp(x, minVal, maxVal)));
}

/** min(max(0, x), 6), with hardtanh's gradient (0 at 0 and at 6, as in PyTorch). */
export function relu6(x: Tensor): Tensor {
  return hardtanh(x, 0, 6);
}

/**
 * x·relu6(x + 3)/6. PyTorch's backward uses the middle piece x/3 + 1/2 on the closed interval
 * [−3, 3], so the gradient is −1/2 at −3 and 3/2 at 3 (the product rule through relu6 would give 0 and 1).
 */
export function hardswish(x: Tensor): Tensor {
  checkFloating('hardswish', x);
  return where(lt(x, -3), 0, where(le(x, 3), div(mul(x, add(x, 3)), 6), x));
}

// PyTorch's hardsigmoid backward multiplies by the float literal 1.0f/6.0f even in float64.
const HARDSIGMOID_SLOPE = Math.fround(1 / 6);

/** relu6(x + 3)/6; the gradient is 1/6 strictly inside (−3, 3) and 0 at and beyond ±3, as in PyTorch. */
export function hardsigmoid(x: Tensor): Tensor {
  checkFloating('hardsigmoid', x);
  const inside = logicalAnd(gt(x, -3), lt(x, 3));
  const value = div(clamp(add(x, 3), 0, 6), 6);
  // Inside, the slope is PyTorch's rounded 1/6 (x − detach(x) is 0 in value); outside, no gradient.
  return where(inside, withGradientOf(value, mul(x, HARDSIGMOID_SLOPE)), detach(value));
}

/**
 * PReLU: x for x > 0, weight·x otherwise. `weight` holds one value (shared) or one per channel
 * (axis 1 of an input of rank ≥ 2), as torch.nn.functional.prelu takes it.
 */
export function prelu(x: Tensor, weight: Tensor): Tensor {
  checkFloating('prelu', x);
  check(weight.rank <= 1, 'prelu', () => `weight must be a scalar or 1-D tensor, got shape ${fmtShape(weight.shape)}; pass one value or one per channel.`);
  const n = weight.size;
  const channels = x.rank >= 2 ? x.shape[1]! : 1;
  check(n === 1 || (x.rank > 0 && n === channels), 'prelu', () =>
    `weight has ${n} values but input ${fmtShape(x.shape)} has ${channels} channel${channels === 1 ? '' : 's'} (axis 1); pass 1 or ${channels} values.`);
  const w = n === 1 ? reshape(weight, []) : reshape(weight, [n, ...new Array<number>(x.rank - 2).fill(1)]);
  return where(gt(x, 0), x, mul(cast(w, x.dtype), x));
}

/** x / (1 + |x|); integers give floats, as in PyTorch. */
export function softsign(x: Tensor): Tensor {
  return div(x, add(abs(x), 1));
}

/** x − tanh(x). */
export function tanhshrink(x: Tensor): Tensor {
  return sub(x, tanh(x));
}

/** x − λ above λ, x + λ below −λ, 0 between (gradient 0 at ±λ, as in PyTorch); λ ≥ 0. */
export function softshrink(x: Tensor, lambd = 0.5): Tensor {
  checkFloating('softshrink', x);
  check(lambd >= 0, 'softshrink', () => `lambd must be greater or equal to 0, got ${lambd}.`);
  // mul(x, 0) rather than 0, so NaN stays NaN as in PyTorch's kernel.
  return where(gt(x, lambd), sub(x, lambd), where(lt(x, -lambd), add(x, lambd), mul(x, 0)));
}

/** x outside [−λ, λ], 0 inside (gradient 0 at ±λ). PyTorch accepts a negative λ (nothing is zeroed). */
export function hardshrink(x: Tensor, lambd = 0.5): Tensor {
  checkFloating('hardshrink', x);
  return where(logicalAnd(ge(x, -lambd), le(x, lambd)), 0, x);
}

/** x where x > threshold, else `value` (the gradient is 0 at x = threshold). Integer tensors keep their dtype. */
export function threshold(x: Tensor, thresholdValue: number, value: number): Tensor {
  check(x.dtype !== 'bool', 'threshold', () => 'not defined for bool tensors; cast to float first.');
  // x <= threshold picks `value`, so a NaN x stays NaN as in PyTorch.
  const out = where(le(x, thresholdValue), value, x);
  return isFloating(x.dtype) ? out : cast(out, x.dtype);
}

/** Gated linear unit: a·sigmoid(b), with a and b the two halves of `axis` (default the last). */
export function glu(x: Tensor, axis = -1): Tensor {
  checkFloating('glu', x);
  check(x.rank > 0, 'glu', () => 'does not take a 0-d tensor: it halves an axis; reshape to at least 1-D.');
  const ax = normalizeAxis(axis, x.rank, 'glu');
  const n = x.shape[ax]!;
  check(n % 2 === 0, 'glu', () => `halving axis ${ax} of ${fmtShape(x.shape)} needs an even size, got ${n}.`);
  const [a, b] = split(x, n / 2, ax);
  return mul(a!, sigmoid(b!));
}

/** softmax(−x) along `axis`. */
export function softmin(x: Tensor, axis: number, opts: SoftmaxOptions = {}): Tensor {
  const xf = isFloating(x.dtype) ? x : cast(x, opts.dtype ?? defaultFloatDType());
  return softmax(neg(xf), axis, opts);
}
