// Losses on pairs and triplets of embeddings with PyTorch's semantics: cosineEmbeddingLoss and
// tripletMarginLoss.
import { isFloating } from '../../core/dtype.js';
import { check, fmtShape } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { autocastOperands } from '../dispatch.js';
import { add, clamp, div, eq, minimum, mul, sqrt, sub, where } from '../elementwise.js';
import { sum } from '../reduce.js';
import { pairwiseDistance } from './distance.js';
import { reduceLoss, type ElementwiseLossOptions } from './loss.js';

// PyTorch's cosine_embedding_loss adds this to each squared norm.
const COSINE_EMBEDDING_EPSILON = 1e-12;

export interface CosineEmbeddingLossOptions extends ElementwiseLossOptions {
  /** Default 0. */
  margin?: number;
}

/**
 * 1 − cos(x1, x2) where target is 1, max(0, cos(x1, x2) − margin) where it is −1 (0 for other
 * targets). Inputs [N, D] with targets [N], or [D] with a 0-d target.
 */
export function cosineEmbeddingLoss(input1: Tensor, input2: Tensor, target: Tensor, opts: CosineEmbeddingLossOptions = {}): Tensor {
  const op = 'cosineEmbeddingLoss';
  [input1, input2, target] = autocastOperands(op, [input1, input2, target]);
  check(target.rank <= 1, op, () => `target must be 0-d or 1-D (one ±1 per pair), got ${fmtShape(target.shape)}.`);
  const want = target.rank + 1;
  check(input1.rank === want && input2.rank === want, op, () =>
    `a ${target.rank}-d target expects ${want}-d inputs, got ${fmtShape(input1.shape)} and ${fmtShape(input2.shape)}.`);
  check(isFloating(input1.dtype) && isFloating(input2.dtype), op, () => `inputs must be floating, got ${input1.dtype} and ${input2.dtype}.`);
  const axis = target.rank;
  const dot = sum(mul(input1, input2), axis);
  const n1 = add(sum(mul(input1, input1), axis), COSINE_EMBEDDING_EPSILON);
  const n2 = add(sum(mul(input2, input2), axis), COSINE_EMBEDDING_EPSILON);
  const cos = div(dot, sqrt(mul(n1, n2)));
  const pos = where(eq(target, 1), sub(1, cos), 0);
  const neg = where(eq(target, -1), clamp(sub(cos, opts.margin ?? 0), 0), 0);
  return reduceLoss(op, add(pos, neg), opts.reduction ?? 'mean');
}

export interface TripletMarginLossOptions extends ElementwiseLossOptions {
  /** Default 1. */
  margin?: number;
  /** The distance's norm order (default 2). */
  p?: number;
  /** Added to differences, as pairwiseDistance does (default 1e-6). */
  eps?: number;
  /** Also measure positive–negative and use the smaller distance (the distance swap of Balntas et al. 2016). */
  swap?: boolean;
}

/** max(0, margin + d(anchor, positive) − d(anchor, negative)) with d = pairwiseDistance. */
export function tripletMarginLoss(anchor: Tensor, positive: Tensor, negative: Tensor, opts: TripletMarginLossOptions = {}): Tensor {
  const op = 'tripletMarginLoss';
  [anchor, positive, negative] = autocastOperands(op, [anchor, positive, negative]);
  check(anchor.rank === positive.rank && positive.rank === negative.rank, op, () =>
    `anchor ${fmtShape(anchor.shape)}, positive ${fmtShape(positive.shape)} and negative ${fmtShape(negative.shape)} must have one rank.`);
  check(isFloating(anchor.dtype), op, () => `anchor must be floating, got ${anchor.dtype}.`);
  const dist = { p: opts.p ?? 2, eps: opts.eps ?? 1e-6 };
  const dPos = pairwiseDistance(anchor, positive, dist);
  let dNeg = pairwiseDistance(anchor, negative, dist);
  if (opts.swap === true) dNeg = minimum(dNeg, pairwiseDistance(positive, negative, dist));
  return reduceLoss(op, clamp(sub(add(dPos, opts.margin ?? 1), dNeg), 0), opts.reduction ?? 'mean');
}
