// Regression and count losses with PyTorch's semantics: l1Loss, smoothL1Loss, huberLoss,
// poissonNllLoss and gaussianNllLoss. Each takes a target of the input's shape (PyTorch broadcasts
// with a warning; here a mismatch is an error) and a Reduction.
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { shapesEqual } from '../../core/shape.js';
import { autocastOperands } from '../dispatch.js';
import { abs, add, cast, eq, exp, gt, le, log, lt, mul, neg, sub, div, where } from '../elementwise.js';
import { sum } from '../reduce.js';
import { detach, unsqueeze } from '../shape.js';
import { checkReduction, checkSameShape, reduceLoss, type ElementwiseLossOptions } from './loss.js';
import { clampMinKeepingGradient } from './straight-through.js';

/** Mean (or sum, or per-element) absolute error. Its gradient at input = target is 0 (sign(0)). */
export function l1Loss(input: Tensor, target: Tensor, opts: ElementwiseLossOptions = {}): Tensor {
  [input, target] = autocastOperands('l1Loss', [input, target]);
  checkSameShape('l1Loss', input, target);
  return reduceLoss('l1Loss', abs(sub(input, target)), opts.reduction ?? 'mean');
}

export interface SmoothL1LossOptions extends ElementwiseLossOptions {
  /** Where the loss turns from quadratic to linear (default 1; 0 is the L1 loss; must not be negative). */
  beta?: number;
}

/** 0.5·d²/beta for |d| < beta, |d| − beta/2 otherwise (d = input − target). */
export function smoothL1Loss(input: Tensor, target: Tensor, opts: SmoothL1LossOptions = {}): Tensor {
  const beta = opts.beta ?? 1;
  check(beta >= 0, 'smoothL1Loss', () => `beta must not be negative, got ${beta}; use beta >= 0 (0 is the L1 loss).`);
  [input, target] = autocastOperands('smoothL1Loss', [input, target]);
  checkSameShape('smoothL1Loss', input, target);
  const d = sub(input, target);
  const linear = where(gt(d, 0), sub(d, 0.5 * beta), sub(neg(d), 0.5 * beta));
  if (beta === 0) {
    // PyTorch's backward tests d <= −beta first, and takes the target's gradient with the roles
    // swapped, so at d = 0 both the input's and the target's gradient are −1 (abs would give 0):
    // `tie` is 0 in value with exactly those derivatives.
    const both = add(input, target);
    const tie = sub(detach(both), both);
    return reduceLoss('smoothL1Loss', where(eq(d, 0), tie, linear), opts.reduction ?? 'mean');
  }
  const loss = where(lt(abs(d), beta), div(mul(mul(d, d), 0.5), beta), linear);
  return reduceLoss('smoothL1Loss', loss, opts.reduction ?? 'mean');
}

export interface HuberLossOptions extends ElementwiseLossOptions {
  /** Where the loss turns from quadratic to linear (default 1; must be positive). */
  delta?: number;
}

/** 0.5·d² for |d| < delta, delta·(|d| − delta/2) otherwise. */
export function huberLoss(input: Tensor, target: Tensor, opts: HuberLossOptions = {}): Tensor {
  const delta = opts.delta ?? 1;
  check(delta > 0, 'huberLoss', () => `delta must be positive, got ${delta}; e.g. delta: 1.`);
  [input, target] = autocastOperands('huberLoss', [input, target]);
  checkSameShape('huberLoss', input, target);
  const d = sub(input, target);
  const ad = abs(d);
  const loss = where(lt(ad, delta), mul(mul(d, d), 0.5), mul(sub(ad, 0.5 * delta), delta));
  return reduceLoss('huberLoss', loss, opts.reduction ?? 'mean');
}

export interface PoissonNllLossOptions extends ElementwiseLossOptions {
  /** The input is the log of the rate (default true): loss exp(input) − target·input. */
  logInput?: boolean;
  /** Adds Stirling's approximation of log(target!) for targets above 1 (default false). */
  full?: boolean;
  /** Added to the rate before its log when logInput is false (default 1e-8). */
  eps?: number;
}

/** Negative log-likelihood of a Poisson-distributed target given its rate (or log-rate). */
export function poissonNllLoss(input: Tensor, target: Tensor, opts: PoissonNllLossOptions = {}): Tensor {
  [input, target] = autocastOperands('poissonNllLoss', [input, target]);
  checkSameShape('poissonNllLoss', input, target);
  let loss = opts.logInput === false
    ? sub(input, mul(target, log(add(input, opts.eps ?? 1e-8))))
    : sub(exp(input), mul(target, input));
  if (opts.full === true) {
    // t·log t − t + ½·log(2πt), 0 for t <= 1 (PyTorch's masked_fill); the log sees 2 there instead of
    // t, so t = 0 gives a zero gradient rather than 0·inf.
    const small = le(target, 1);
    const t = where(small, 2, target);
    const stirling = add(sub(mul(t, log(t)), t), mul(log(mul(t, 2 * Math.PI)), 0.5));
    loss = add(loss, where(small, 0, stirling));
  }
  return reduceLoss('poissonNllLoss', loss, opts.reduction ?? 'mean');
}

export interface GaussianNllLossOptions extends ElementwiseLossOptions {
  /** Adds the constant ½·log(2π) (default false). */
  full?: boolean;
  /** The variance is clamped up to eps for stability, without blocking its gradient (default 1e-6). */
  eps?: number;
}

/**
 * Negative log-likelihood of a Gaussian target: ½·(log var + (input − target)²/var). `variance` has
 * the input's shape, or that shape without its last axis, or with 1 there (one variance shared by
 * the last axis). Negative variances are an error, as in PyTorch (the check reads the tensor).
 */
export function gaussianNllLoss(input: Tensor, target: Tensor, variance: Tensor, opts: GaussianNllLossOptions = {}): Tensor {
  [input, target, variance] = autocastOperands('gaussianNllLoss', [input, target, variance]);
  checkSameShape('gaussianNllLoss', input, target);
  check(isFloating(variance.dtype), 'gaussianNllLoss', () => `variance must be floating, got ${variance.dtype}.`);
  let v = variance;
  if (!shapesEqual(v.shape, input.shape)) {
    const lead = input.shape.slice(0, -1);
    if (input.rank > 0 && shapesEqual(v.shape, lead)) v = unsqueeze(v, -1);
    else check(input.rank > 0 && v.rank === input.rank && shapesEqual(v.shape.slice(0, -1), lead) && v.shape[v.rank - 1] === 1, 'gaussianNllLoss', () =>
      `variance ${fmtShape(variance.shape)} does not fit input ${fmtShape(input.shape)}; give ${fmtShape(input.shape)}, ${fmtShape(lead)} or ${fmtShape([...lead, 1])}.`);
  }
  const reduction = opts.reduction ?? 'mean';
  checkReduction('gaussianNllLoss', reduction);
  check(sum(cast(lt(v, 0), 'int32')).item() === 0, 'gaussianNllLoss', () => 'variance has negative entries; a variance must be >= 0 (e.g. pass softplus(raw) or exp(logVar)).');
  const vc = clampMinKeepingGradient(v, opts.eps ?? 1e-6);
  const d = sub(input, target);
  let loss = mul(add(log(vc), div(mul(d, d), vc)), 0.5);
  if (opts.full === true) loss = add(loss, 0.5 * Math.log(2 * Math.PI));
  return reduceLoss('gaussianNllLoss', loss, reduction);
}
