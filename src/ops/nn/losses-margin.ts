// Margin and soft-margin classification losses with PyTorch's semantics: marginRankingLoss,
// hingeEmbeddingLoss, softMarginLoss, multilabelSoftMarginLoss and multiMarginLoss. PyTorch
// computes the hinges with clamp_min (gradient 1 at the hinge, like `clamp`) except for
// multi_margin_loss, whose kernel counts only z > 0 (like `relu`); each follows its own.
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { autocastOperands } from '../dispatch.js';
import { arange } from '../creation.js';
import { add, cast, clamp, div, eq, mul, ne, neg, relu, sub, where } from '../elementwise.js';
import { gather, indexSelect } from '../indexing.js';
import { sum } from '../reduce.js';
import { reshape, unsqueeze } from '../shape.js';
import { withContext } from './context.js';
import { checkReduction, checkSameShape, logSigmoid, reduceLoss, type ElementwiseLossOptions } from './loss.js';

function checkFloating(op: string, what: string, x: Tensor): void {
  check(isFloating(x.dtype), op, () => `${what} must be floating, got ${x.dtype}; cast it first, e.g. ${what}.float().`);
}

export interface MarginLossOptions extends ElementwiseLossOptions {
  margin?: number;
}

/**
 * max(0, −target·(input1 − input2) + margin) with target ±1 (input1 should rank higher where the
 * target is 1). The three tensors must have one rank and broadcast, as in PyTorch. Default margin 0.
 */
export function marginRankingLoss(input1: Tensor, input2: Tensor, target: Tensor, opts: MarginLossOptions = {}): Tensor {
  [input1, input2, target] = autocastOperands('marginRankingLoss', [input1, input2, target]);
  check(input1.rank === input2.rank && input1.rank === target.rank, 'marginRankingLoss', () =>
    `input1 ${fmtShape(input1.shape)}, input2 ${fmtShape(input2.shape)} and target ${fmtShape(target.shape)} must have one rank.`);
  checkFloating('marginRankingLoss', 'input1', input1);
  const z = add(mul(neg(target), sub(input1, input2)), opts.margin ?? 0);
  return reduceLoss('marginRankingLoss', clamp(z, 0), opts.reduction ?? 'mean');
}

/**
 * input where target is 1, max(0, margin − input) where it is −1 (and their sum for any other
 * target value, as PyTorch computes it). Default margin 1.
 */
export function hingeEmbeddingLoss(input: Tensor, target: Tensor, opts: MarginLossOptions = {}): Tensor {
  [input, target] = autocastOperands('hingeEmbeddingLoss', [input, target]);
  checkFloating('hingeEmbeddingLoss', 'input', input);
  const marginTerm = where(ne(target, 1), clamp(sub(opts.margin ?? 1, input), 0), 0);
  const selfTerm = where(ne(target, -1), input, 0);
  return reduceLoss('hingeEmbeddingLoss', add(marginTerm, selfTerm), opts.reduction ?? 'mean');
}

/** log(1 + exp(−target·input)) with target ±1, computed as −logSigmoid(target·input) (no overflow). */
export function softMarginLoss(input: Tensor, target: Tensor, opts: ElementwiseLossOptions = {}): Tensor {
  [input, target] = autocastOperands('softMarginLoss', [input, target]);
  checkSameShape('softMarginLoss', input, target);
  return reduceLoss('softMarginLoss', neg(logSigmoid(mul(cast(target, input.dtype), input))), opts.reduction ?? 'mean');
}

export interface MultilabelSoftMarginLossOptions extends ElementwiseLossOptions {
  /** A weight per class, broadcast over the last axis. */
  weight?: Tensor;
}

/**
 * One-versus-all logistic loss for multi-label targets (0 or 1 per class): the mean over the
 * classes (last axis) of −[y·log σ(x) + (1 − y)·log σ(−x)], then the reduction over samples.
 */
export function multilabelSoftMarginLoss(input: Tensor, target: Tensor, opts: MultilabelSoftMarginLossOptions = {}): Tensor {
  [input, target] = autocastOperands('multilabelSoftMarginLoss', [input, target]);
  checkSameShape('multilabelSoftMarginLoss', input, target);
  checkReduction('multilabelSoftMarginLoss', opts.reduction ?? 'mean');
  const y = cast(target, input.dtype);
  let loss = neg(add(mul(y, logSigmoid(input)), mul(sub(1, y), logSigmoid(neg(input)))));
  if (opts.weight !== undefined) loss = mul(loss, cast(opts.weight, input.dtype));
  const classAxis = Math.max(input.rank - 1, 0);
  const perSample = div(sum(loss, classAxis), input.rank === 0 ? 1 : input.shape[classAxis]!);
  return reduceLoss('multilabelSoftMarginLoss', perSample, opts.reduction ?? 'mean');
}

export interface MultiMarginLossOptions extends ElementwiseLossOptions {
  /** 1 (hinge, the default) or 2 (squared hinge). */
  p?: 1 | 2;
  /** Default 1. */
  margin?: number;
  /** A weight per class [C], applied by each sample's target class. */
  weight?: Tensor;
}

/**
 * Multi-class hinge loss of scores [N, C] (or [C]) against class indices (int32 [N], or [] / [1]):
 * per sample, Σ_{i ≠ y} w[y]·max(0, margin − x[y] + x[i])^p / C. The hinge's gradient is 0 at
 * exactly 0, as in PyTorch's kernel; 'mean' averages over samples.
 */
export function multiMarginLoss(input: Tensor, target: Tensor, opts: MultiMarginLossOptions = {}): Tensor {
  [input, target] = autocastOperands('multiMarginLoss', [input, target]);
  const op = 'multiMarginLoss';
  const p = opts.p ?? 1;
  check(p === 1 || p === 2, op, () => `p must be 1 or 2, got ${String(p)}.`);
  checkFloating(op, 'input', input);
  check(target.dtype === 'int32', op, () => `target must hold int32 class indices, got ${target.dtype}.`);
  check((input.rank === 1 || input.rank === 2) && input.size > 0, op, () => `expects a non-empty input [C] or [N, C], got ${fmtShape(input.shape)}.`);
  const batched = input.rank === 1 ? unsqueeze(input, 0) : input;
  const [n, c] = [batched.shape[0]!, batched.shape[1]!];
  check(target.rank <= 1 && target.size === n, op, () =>
    `input ${fmtShape(input.shape)} needs ${n} target${n === 1 ? '' : 's'} (shape [${n}]${n === 1 ? ' or []' : ''}), got ${fmtShape(target.shape)}.`);
  const reduction = opts.reduction ?? 'mean';
  checkReduction(op, reduction);
  const tgt = reshape(target, [n, 1]);
  const picked = withContext(op, `targets must be in [0, ${c})`, () => gather(batched, 1, tgt));
  let h = relu(add(sub(opts.margin ?? 1, picked), batched));
  if (p === 2) h = mul(h, h);
  h = where(eq(unsqueeze(arange(c, undefined, 1, { dtype: 'int32', backend: input.backend }), 0), tgt), 0, h);
  if (opts.weight !== undefined) {
    const w = opts.weight;
    check(w.rank === 1 && w.shape[0] === c, op, () => `weight must have shape [${c}] (one per class), got ${fmtShape(w.shape)}.`);
    h = mul(h, unsqueeze(indexSelect(cast(w, input.dtype), 0, reshape(tgt, [n])), 1));
  }
  const loss = div(sum(h, 1), c);
  if (reduction === 'none') return target.rank === 0 ? reshape(loss, []) : loss;
  return reduceLoss(op, loss, reduction);
}
