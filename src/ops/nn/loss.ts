// Loss functions with PyTorch's semantics and reductions ('mean' | 'sum' | 'none'): nllLoss,
// crossEntropy (class indices with ignoreIndex, class weights and label smoothing, or class
// probabilities), mseLoss and binaryCrossEntropyWithLogits (stable for any logit, posWeight).
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import { withContext } from './context.js';
import type { Tensor } from '../../core/tensor.js';
import { autocastOperands, bind } from '../dispatch.js';
import { add, sub, mul, div, neg, ne, eq, where, cast, log1p, exp, lt, ge } from '../elementwise.js';
import { sum, mean } from '../reduce.js';
import { reshape, unsqueeze, squeeze } from '../shape.js';
import { logSoftmax } from './softmax.js';

export type Reduction = 'mean' | 'sum' | 'none';

/** Rejects a reduction string other than 'mean', 'sum' or 'none'. */
export function checkReduction(op: string, reduction: string): void {
  check(reduction === 'mean' || reduction === 'sum' || reduction === 'none', op, () =>
    `reduction must be 'mean', 'sum' or 'none', got ${JSON.stringify(reduction)}.`);
}

/** Applies `reduction` to per-element losses, rejecting any other string (shared by every loss). */
export function reduceLoss(op: string, loss: Tensor, reduction: Reduction): Tensor {
  checkReduction(op, reduction);
  return reduction === 'none' ? loss : reduction === 'sum' ? sum(loss) : mean(loss);
}

export interface NllLossOptions {
  /** A weight per class, [C]. */
  weight?: Tensor;
  /** Targets equal to this contribute nothing (and do not count in the mean). Default -100. */
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** Class axis 1 of [N, C, *] (or 0 of an unbatched [C]); targets [N, *] (or []). */
function classLayout(op: string, input: Tensor, target: Tensor): { batched: Tensor; tgt: Tensor; unbatched: boolean } {
  check(isFloating(input.dtype), op, () => `input must be floating, got ${input.dtype}.`);
  check(target.dtype === 'int32', op, () => `class-index targets must be int32, got ${target.dtype}; for class probabilities pass a floating target of the input's shape to crossEntropy.`);
  const unbatched = input.rank === 1;
  const batched = unbatched ? unsqueeze(input, 0) : input;
  const tgt = unbatched ? reshape(target, [1]) : target;
  const expected = [batched.shape[0]!, ...batched.shape.slice(2)];
  check(batched.rank >= 2 && tgt.rank === expected.length && tgt.shape.every((d, i) => d === expected[i]), op, () =>
    `input ${fmtShape(input.shape)} (classes on axis 1) needs a target of shape ${fmtShape(unbatched ? [] : expected)}, got ${fmtShape(target.shape)}.`);
  return { batched, tgt, unbatched };
}

interface PickedTerms {
  /** −w[t]·input[t] per element, 0 where ignored. */
  loss: Tensor;
  /** w[t] per element, 0 where ignored (the mean's denominator). */
  weightOfTarget: Tensor;
  ignored: Tensor;
}

function pickTargets(op: string, input: Tensor, target: Tensor, weight: Tensor | undefined, ignoreIndex: number): PickedTerms {
  const c = input.shape[1]!;
  const ignored = eq(target, ignoreIndex);
  const safe = where(ignored, 0, target); // a valid index where ignored, so gather stays in bounds
  // Bounds are checked by the gather kernel, not by reading the targets here: a read would make a
  // traced (jit) step guard on the target values and retrace for every batch.
  const picked = squeeze(withContext(op, `targets must be in [0, ${c}) or equal ignoreIndex ${ignoreIndex}`,
    () => bind('gather', [input, unsqueeze(safe, 1)], { axis: 1 })), 1);
  let w: Tensor = cast(ne(target, ignoreIndex), input.dtype);
  if (weight !== undefined) {
    check(weight.rank === 1 && weight.shape[0] === c, op, () => `weight must have shape [${c}] (one per class), got ${fmtShape(weight.shape)}.`);
    const wt = reshape(bind('gather', [cast(weight, input.dtype), reshape(safe, [-1])], { axis: 0 }), safe.shape);
    w = where(ignored, 0, wt);
  }
  return { loss: neg(mul(picked, w)), weightOfTarget: w, ignored };
}

/** Negative log-likelihood of class indices given log-probabilities [N, C, *] (or [C]). */
export function nllLoss(input: Tensor, target: Tensor, opts: NllLossOptions = {}): Tensor {
  [input, target] = autocastOperands('nllLoss', [input, target]);
  const { batched, tgt, unbatched } = classLayout('nllLoss', input, target);
  const { loss, weightOfTarget } = pickTargets('nllLoss', batched, tgt, opts.weight, opts.ignoreIndex ?? -100);
  const reduction = opts.reduction ?? 'mean';
  if (reduction === 'mean') return div(sum(loss), sum(weightOfTarget));
  const out = reduceLoss('nllLoss', loss, reduction);
  return unbatched && reduction === 'none' ? reshape(out, []) : out;
}

export interface CrossEntropyOptions extends NllLossOptions {
  /** Mixes the target with the uniform distribution: (1 − ε)·target + ε/C (default 0). */
  labelSmoothing?: number;
}

/**
 * Cross-entropy of logits [N, C, *] (or [C]) against class indices (int32 [N, *]) or class
 * probabilities (floating, the logits' shape), like torch.nn.functional.cross_entropy.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  [logits, target] = autocastOperands('crossEntropy', [logits, target]);
  const eps = opts.labelSmoothing ?? 0;
  check(eps >= 0 && eps <= 1, 'crossEntropy', () => `labelSmoothing must be in [0, 1], got ${eps}.`);
  const reduction = opts.reduction ?? 'mean';
  if (isFloating(target.dtype)) return crossEntropyWithProbabilities(logits, target, eps, opts.weight, reduction);
  const { batched, tgt, unbatched } = classLayout('crossEntropy', logits, target);
  const c = batched.shape[1]!;
  const logp = logSoftmax(batched, 1);
  const { loss: nll, weightOfTarget, ignored } = pickTargets('crossEntropy', logp, tgt, opts.weight, opts.ignoreIndex ?? -100);
  let loss = nll;
  if (eps > 0) {
    // PyTorch's smoothing term: −Σ_c w_c·log p_c per element (0 where ignored), scaled by ε/C.
    const weighted = opts.weight === undefined ? logp : mul(logp, reshape(cast(opts.weight, logp.dtype), [c, ...new Array<number>(logp.rank - 2).fill(1)]));
    const smooth = where(ignored, 0, neg(sum(weighted, 1)));
    loss = add(mul(nll, 1 - eps), mul(smooth, eps / c));
  }
  if (reduction === 'mean') return div(sum(loss), sum(weightOfTarget));
  const out = reduceLoss('crossEntropy', loss, reduction);
  return unbatched && reduction === 'none' ? reshape(out, []) : out;
}

function crossEntropyWithProbabilities(logits: Tensor, target: Tensor, eps: number, weight: Tensor | undefined, reduction: Reduction): Tensor {
  check(isFloating(logits.dtype), 'crossEntropy', () => `logits must be floating, got ${logits.dtype}.`);
  check(logits.rank >= 1 && target.rank === logits.rank && target.shape.every((d, i) => d === logits.shape[i]), 'crossEntropy', () =>
    `class-probability targets must have the logits' shape ${fmtShape(logits.shape)}, got ${fmtShape(target.shape)}.`);
  const axis = logits.rank === 1 ? 0 : 1;
  const c = logits.shape[axis]!;
  const logp = logSoftmax(logits, axis);
  let p = cast(target, logp.dtype);
  if (eps > 0) p = add(mul(p, 1 - eps), eps / c);
  let terms = mul(logp, p);
  if (weight !== undefined) {
    check(weight.rank === 1 && weight.shape[0] === c, 'crossEntropy', () => `weight must have shape [${c}], got ${fmtShape(weight.shape)}.`);
    terms = mul(terms, reshape(cast(weight, logp.dtype), [c, ...new Array<number>(logits.rank - axis - 1).fill(1)]));
  }
  const loss = neg(sum(terms, axis));
  return reduceLoss('crossEntropy', loss, reduction);
}

export interface ElementwiseLossOptions {
  reduction?: Reduction;
}

/** Elementwise losses take a floating input and a target of its exact shape (PyTorch broadcasts with a warning; a mismatch is almost always a bug). */
export function checkSameShape(op: string, input: Tensor, target: Tensor): void {
  check(input.rank === target.rank && input.shape.every((d, i) => d === target.shape[i]), op, () =>
    `input ${fmtShape(input.shape)} and target ${fmtShape(target.shape)} must have one shape; reshape or expand the target to ${fmtShape(input.shape)} explicitly.`);
  check(isFloating(input.dtype), op, () => `input must be floating, got ${input.dtype}; cast it first, e.g. input.float().`);
}

/** Mean (or sum, or per-element) squared error. */
export function mseLoss(input: Tensor, target: Tensor, opts: ElementwiseLossOptions = {}): Tensor {
  [input, target] = autocastOperands('mseLoss', [input, target]);
  checkSameShape('mseLoss', input, target);
  const d = sub(input, target);
  return reduceLoss('mseLoss', mul(d, d), opts.reduction ?? 'mean');
}

/**
 * log(sigmoid(x)) with finite values and exact gradients everywhere: with a = max(x, 0) and
 * b = min(x, 0) (as `where`s, so each carries the gradient on its side), it is b − log1p(exp(b − a)),
 * and exp never sees a positive argument.
 */
export function logSigmoid(x: Tensor): Tensor {
  const a = where(ge(x, 0), x, 0);
  const b = where(lt(x, 0), x, 0);
  return sub(b, log1p(exp(sub(b, a))));
}

export interface BceWithLogitsOptions extends ElementwiseLossOptions {
  /** Rescales each element's loss (broadcast to the input). */
  weight?: Tensor;
  /** Weight of the positive term per class (broadcast over the last axis), for imbalanced data. */
  posWeight?: Tensor;
}

/** Binary cross-entropy on logits: −[posWeight·y·log σ(x) + (1 − y)·log(1 − σ(x))], stable for any x. */
export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, opts: BceWithLogitsOptions = {}): Tensor {
  [logits, target] = autocastOperands('binaryCrossEntropyWithLogits', [logits, target]);
  checkSameShape('binaryCrossEntropyWithLogits', logits, target);
  const y = cast(target, logits.dtype);
  const ls = logSigmoid(logits);
  // log(1 − σ(x)) = log σ(x) − x.
  const negTerm = mul(sub(1, y), sub(ls, logits));
  const posTerm = opts.posWeight === undefined ? mul(y, ls) : mul(mul(y, opts.posWeight), ls);
  let loss = neg(add(posTerm, negTerm));
  if (opts.weight !== undefined) loss = mul(loss, opts.weight);
  return reduceLoss('binaryCrossEntropyWithLogits', loss, opts.reduction ?? 'mean');
}
