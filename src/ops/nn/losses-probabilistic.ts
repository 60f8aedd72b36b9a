// Losses between distributions given as probabilities: klDiv (with 'batchmean') and
// binaryCrossEntropy on probabilities, matching PyTorch's values and its hand-written gradients.
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { broadcastShapes, shapesEqual } from '../../core/shape.js';
import { autocastOperands } from '../dispatch.js';
import { add, cast, div, eq, exp, ge, log, log1p, maximum, mul, neg, sub, where } from '../elementwise.js';
import { sum } from '../reduce.js';
import { detach } from '../shape.js';
import { checkSameShape, reduceLoss, type Reduction } from './loss.js';

export interface KlDivOptions {
  /** 'batchmean' divides the sum by the batch size (input.shape[0]), the mathematically right KL mean. Default 'mean' (over all elements, as PyTorch). */
  reduction?: Reduction | 'batchmean';
  /** The target is given as log-probabilities (default false: probabilities). */
  logTarget?: boolean;
}

/**
 * KL divergence of the target from the input, where the input holds log-probabilities:
 * target·(log target − input) elementwise, 0 where the target is 0 (PyTorch's xlogy).
 */
export function klDiv(input: Tensor, target: Tensor, opts: KlDivOptions = {}): Tensor {
  [input, target] = autocastOperands('klDiv', [input, target]);
  checkSameShape('klDiv', input, target);
  const t = cast(target, input.dtype);
  let loss: Tensor;
  if (opts.logTarget === true) {
    loss = mul(exp(t), sub(t, input));
  } else {
    // xlogy(t, t): t·log t with 0 at t = 0; the log sees 1 there, so no 0·(−inf) reaches a gradient.
    const zero = eq(t, 0);
    loss = sub(mul(t, log(where(zero, 1, t))), mul(t, input));
  }
  const reduction = opts.reduction ?? 'mean';
  check(['mean', 'sum', 'none', 'batchmean'].includes(reduction), 'klDiv', () =>
    `reduction must be 'batchmean', 'mean', 'sum' or 'none', got ${JSON.stringify(reduction)}.`);
  if (reduction === 'batchmean') {
    const total = sum(loss);
    return input.rank === 0 ? total : div(total, input.shape[0]!);
  }
  return reduceLoss('klDiv', loss, reduction);
}

export interface BinaryCrossEntropyOptions {
  /** Rescales each element's loss (broadcast to the input's shape). */
  weight?: Tensor;
  reduction?: Reduction;
}

// PyTorch's binary_cross_entropy_backward divides by max(x·(1 − x), EPSILON), a float constant
// (so 1e-12 rounded to float32, also in float64).
const BCE_EPSILON = Math.fround(1e-12);

/**
 * Binary cross-entropy on probabilities: −w·[y·log x + (1 − y)·log(1 − x)], each log clamped at
 * −100 as in PyTorch (so x = 0 or 1 gives a finite loss). The gradient is PyTorch's:
 * w·(x − y)/max(x·(1 − x), ε) with ε = float32(1e-12) for the input and w·(log(1 − x) − log x) for the target. Inputs
 * outside [0, 1] give NaN (PyTorch raises; checking would read the tensor back every step).
 */
export function binaryCrossEntropy(input: Tensor, target: Tensor, opts: BinaryCrossEntropyOptions = {}): Tensor {
  [input, target] = autocastOperands('binaryCrossEntropy', [input, target]);
  checkSameShape('binaryCrossEntropy', input, target);
  const x = input;
  const y = cast(target, x.dtype);
  // Where x·(1 − x) >= EPSILON no log is clamped and the exact composite has PyTorch's gradient.
  const interior = ge(mul(x, sub(1, x)), BCE_EPSILON);
  const xi = where(interior, x, 0.5);
  const interiorLoss = neg(add(mul(y, log(xi)), mul(sub(1, y), log1p(neg(xi)))));
  // Near 0 and 1: the clamped logs as constants (their difference is the target's gradient), and
  // the input's gradient (x − y)/EPSILON from the surrogate (x²/2 − x·y)/EPSILON, which is 0 in value.
  const xd = detach(x);
  const logX = maximum(log(xd), -100);
  const log1mX = maximum(log1p(neg(xd)), -100);
  const clamped = neg(add(mul(y, logX), mul(sub(1, y), log1mX)));
  const surrogate = div(sub(mul(mul(x, x), 0.5), mul(x, detach(y))), BCE_EPSILON);
  const boundaryLoss = add(clamped, sub(surrogate, detach(surrogate)));
  let loss = where(interior, interiorLoss, boundaryLoss);
  if (opts.weight !== undefined) {
    const w = opts.weight;
    check(shapesEqual(broadcastShapes('binaryCrossEntropy', w.shape, x.shape), x.shape), 'binaryCrossEntropy', () =>
      `weight ${fmtShape(w.shape)} must broadcast to the input's shape ${fmtShape(x.shape)}.`);
    loss = mul(loss, cast(w, x.dtype));
  }
  return reduceLoss('binaryCrossEntropy', loss, opts.reduction ?? 'mean');
}
