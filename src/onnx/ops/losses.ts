// ONNX losses: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss.

import type { Tensor } from '../../core/tensor.js';
import { isFloating } from '../../core/dtype.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { registerOnnxOp } from '../registry.js';

const shapeText = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/**
 * ONNX's negative log-likelihood of log-probabilities [N, C, D1...] at class indices [N, D1...]:
 * loss = −input[n, target, d] · weight[target] (weight 1 when absent), 0 where target equals
 * ignore_index (which may lie outside [0, C)). reduction 'none' keeps [N, D1...]; 'sum' sums;
 * 'mean' divides the sum by the summed weights of the targets not ignored (their count without
 * weights). Classes are checked by tessera's gather, which fails on an index outside [0, C).
 */
function negativeLogLikelihood(ctx: NodeContext, input: Tensor, target: Tensor, weight: Tensor | undefined): Tensor {
  const reduction = ctx.string('reduction', 'mean');
  if (reduction !== 'none' && reduction !== 'sum' && reduction !== 'mean') ctx.fail(`reduction '${reduction}' is not supported; it must be 'none', 'sum' or 'mean'`);
  if (!isFloating(input.dtype)) ctx.fail(`the input must be a floating tensor, got ${input.dtype}`);
  if (target.dtype !== 'int32') ctx.fail(`the target must hold class indices (INT32 or INT64), got a ${target.dtype} tensor`);
  const expected = [input.shape[0], ...input.shape.slice(2)];
  if (input.rank < 2 || target.rank !== expected.length || target.shape.some((d, i) => d !== expected[i])) {
    ctx.fail(`input ${shapeText(input)} ([N, C, D1, ...]) needs a target of shape [${expected.join(', ')}], got ${shapeText(target)}`);
  }
  const c = input.shape[1]!;
  if (weight !== undefined && (weight.rank !== 1 || weight.shape[0] !== c)) ctx.fail(`the weight must have shape [${c}] (one per class), got ${shapeText(weight)}`);

  const ignoreIndex = ctx.int('ignore_index');
  const ignored = ignoreIndex === undefined ? undefined : ops.eq(target, ignoreIndex);
  // An ignored target may be any number: gather at class 0 there instead, and zero its term.
  const safe = ignored === undefined ? target : ops.where(ignored, 0, target);
  const picked = ops.squeeze(ops.gather(input, 1, ops.unsqueeze(safe, 1)), 1);
  let w: Tensor | undefined = weight === undefined ? undefined : ops.reshape(ops.indexSelect(ops.cast(weight, input.dtype), 0, ops.reshape(safe, [-1])), safe.shape);
  if (ignored !== undefined) w = ops.where(ignored, 0, w ?? ops.onesLike(picked));
  const loss = ops.neg(w === undefined ? picked : ops.mul(picked, w));
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return ops.sum(loss);
  return w === undefined ? ops.mean(loss) : ops.div(ops.sum(loss), ops.sum(w));
}

/** NegativeLogLikelihoodLoss(input, target, weight?) with attributes reduction and ignore_index. */
registerOnnxOp('NegativeLogLikelihoodLoss', (ctx) => [negativeLogLikelihood(ctx, ctx.tensor(0), ctx.tensor(1), ctx.optionalTensor(2))]);

/**
 * SoftmaxCrossEntropyLoss(scores, labels, weights?): the negative log-likelihood (above) of
 * log_softmax(scores) over the class axis 1; the optional second output is that log_prob.
 */
registerOnnxOp('SoftmaxCrossEntropyLoss', (ctx) => {
  const scores = ctx.tensor(0);
  if (!isFloating(scores.dtype)) ctx.fail(`scores must be a floating tensor, got ${scores.dtype}`);
  if (scores.rank < 2) ctx.fail(`scores must be [N, C, D1, ...], got shape ${shapeText(scores)}`);
  const logProb = ops.logSoftmax(scores, 1);
  return [negativeLogLikelihood(ctx, logProb, ctx.tensor(1), ctx.optionalTensor(2)), logProb];
});
