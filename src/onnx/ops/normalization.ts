// ONNX normalization operators: BatchNormalization, InstanceNormalization, LayerNormalization,
// GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization.

import type { Tensor } from '../../core/tensor.js';
import { type DType, isFloating, promoteTypes } from '../../core/dtype.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';
import { storageDType } from '../value.js';
import { onnxAxis, padAxis } from './reduce.js';

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
const shapeText = (t: Tensor): string => `[${t.shape.join(', ')}]`;

function requireFloat(ctx: NodeContext, x: Tensor, name = 'X'): void {
  if (!isFloating(x.dtype)) ctx.fail(`${name} must be a floating tensor, got ${ctx.typeName(ctx.typeOf(0))}`);
}

/** Whether the node asks for output i (lists it under a non-empty name). */
function wantsOutput(ctx: NodeContext, i: number): boolean {
  return (ctx.node.outputs[i] ?? '') !== '';
}

/**
 * A per-channel parameter p (shape [C], or [C, D1, ...]) of x [N, C, D1, ...] cast to x's dtype and
 * shaped to broadcast along x's channel axis: [C, 1, ..., 1].
 */
function alongChannels(ctx: NodeContext, p: Tensor, x: Tensor, name: string): Tensor {
  if (p.rank < 1 || p.rank > x.rank - 1 || p.shape[0] !== x.shape[1]) {
    ctx.fail(`${name} must have shape [C] with C = ${x.shape[1]} (the channels of X ${shapeText(x)}), got ${shapeText(p)}`);
  }
  return ops.reshape(ops.cast(p, x.dtype), [...p.shape, ...new Array<number>(x.rank - 1 - p.rank).fill(1)]);
}

/** The standardized x and, when asked for, the mean and 1/sqrt(var + eps) it used (kept dims). */
interface Standardized {
  y: Tensor;
  mean?: Tensor;
  invStdDev?: Tensor;
}

/**
 * (x − mean) / sqrt(var + eps) over the axes from `axis` to the last (biased variance). Without
 * statistics to return it is tessera's fused layerNorm; with them, the composite that keeps them.
 */
function standardizeTrailing(x: Tensor, axis: number, eps: number, withStats: boolean): Standardized {
  if (!withStats) return { y: ops.layerNorm(x, x.shape.slice(axis), { eps }) };
  const axes = range(axis, x.rank);
  const mean = ops.mean(x, axes, true);
  const centered = ops.sub(x, mean);
  const invStdDev = ops.rsqrt(ops.add(ops.mean(ops.mul(centered, centered), axes, true), eps));
  return { y: ops.mul(centered, invStdDev), mean, invStdDev };
}

/**
 * The dtype the statistics are computed in: the `stash_type` attribute (default FLOAT), widened to
 * X's own dtype where that is wider (a DOUBLE model is not computed in float32).
 */
function stashDType(ctx: NodeContext, x: Tensor): { stash: DType; compute: DType } {
  const type = ctx.int('stash_type', ElemType.FLOAT);
  const stash = storageDType(type);
  if (stash === undefined || !isFloating(stash)) ctx.fail(`stash_type ${ctx.typeName(type)} is not supported; it must be a floating type (FLOAT, DOUBLE, FLOAT16, BFLOAT16)`);
  return { stash, compute: promoteTypes(stash, x.dtype) };
}

/**
 * BatchNormalization of X [N, C, D...] per channel. Inference: (X − mean) / sqrt(var + epsilon) ·
 * scale + B with the given mean and var (per channel [C]; opset < 9's spatial=0 gives [C, D...],
 * which broadcasts the same way). training_mode=1 (opset 14 on) normalizes with the batch mean and
 * biased variance and also outputs running_mean = mean · momentum + batch_mean · (1 − momentum)
 * (likewise running_var), as ONNX's reference does. Before opset 14 training was asked for by
 * listing the mean/var/saved_mean/saved_var outputs, whose saved_var meaning runtimes disagree on:
 * that form is refused.
 */
registerOnnxOp('BatchNormalization', (ctx) => {
  const x = ctx.tensor(0);
  requireFloat(ctx, x);
  if (x.rank < 2) ctx.fail(`X must be [N, C, ...], got shape ${shapeText(x)}`);
  const eps = ctx.float('epsilon', 1e-5);
  const scale = alongChannels(ctx, ctx.tensor(1), x, 'scale');
  const bias = alongChannels(ctx, ctx.tensor(2), x, 'B');
  const inputMean = ctx.tensor(3), inputVar = ctx.tensor(4);
  const training = ctx.opset >= 14 ? ctx.int('training_mode', 0) !== 0 : range(1, 5).some((i) => wantsOutput(ctx, i));
  if (training && ctx.opset < 14) {
    ctx.fail(`training outputs (mean, var, saved_mean, saved_var) of opset ${ctx.opset} are not supported; tessera runs opset < 14 BatchNormalization in inference mode (Y only), and training mode from opset 14 (training_mode=1)`);
  }
  const affine = (centered: Tensor, variance: Tensor): Tensor =>
    ops.add(ops.mul(ops.div(centered, ops.sqrt(ops.add(variance, eps))), scale), bias);
  if (!training) {
    return [affine(ops.sub(x, alongChannels(ctx, inputMean, x, 'input_mean')), alongChannels(ctx, inputVar, x, 'input_var'))];
  }
  const axes = [0, ...range(2, x.rank)];
  const batchMean = ops.mean(x, axes, true);
  const centered = ops.sub(x, batchMean);
  const batchVar = ops.mean(ops.mul(centered, centered), axes, true);
  const momentum = ctx.float('momentum', 0.9);
  const running = (input: Tensor, batch: Tensor, name: string): Tensor => {
    if (input.rank !== 1 || input.shape[0] !== x.shape[1]) ctx.fail(`${name} must have shape [${x.shape[1]}] in training mode, got ${shapeText(input)}`);
    return ops.add(ops.mul(input, momentum), ops.mul(ops.cast(ops.reshape(batch, input.shape), input.dtype), 1 - momentum));
  };
  return [affine(centered, batchVar), running(inputMean, batchMean, 'input_mean'), running(inputVar, batchVar, 'input_var')];
});

/** InstanceNormalization: each (n, c) plane of X [N, C, D...] standardized over D..., then · scale[c] + B[c]. */
registerOnnxOp('InstanceNormalization', (ctx) => {
  const x = ctx.tensor(0);
  requireFloat(ctx, x);
  if (x.rank < 3) ctx.fail(`X must be [N, C, D1, ...] with at least one spatial dim, got shape ${shapeText(x)}`);
  const { y } = standardizeTrailing(x, 2, ctx.float('epsilon', 1e-5), false);
  return [ops.add(ops.mul(y, alongChannels(ctx, ctx.tensor(1), x, 'scale')), alongChannels(ctx, ctx.tensor(2), x, 'B'))];
});

/**
 * LayerNormalization (opset 17): X standardized over the axes from `axis` (default -1) to the last,
 * computed in stash_type, cast back to X's type, then · Scale + B (both broadcast against
 * X.shape[axis:]). The optional Mean and InvStdDev outputs have X's leading dims and size-1
 * normalized dims, in stash_type.
 */
registerOnnxOp('LayerNormalization', (ctx) => {
  const x = ctx.tensor(0);
  requireFloat(ctx, x);
  if (x.rank === 0) ctx.fail('X must have at least one dimension');
  const axis = onnxAxis(ctx, ctx.int('axis', -1), x.rank);
  const { stash, compute } = stashDType(ctx, x);
  const withStats = wantsOutput(ctx, 1) || wantsOutput(ctx, 2);
  const s = standardizeTrailing(ops.cast(x, compute), axis, ctx.float('epsilon', 1e-5), withStats);
  let y = ops.mul(ops.cast(s.y, x.dtype), ops.cast(ctx.tensor(1), x.dtype));
  const b = ctx.optionalTensor(2);
  if (b !== undefined) y = ops.add(y, ops.cast(b, x.dtype));
  if (!withStats) return [y];
  return [y, ops.cast(s.mean!, stash), ops.cast(s.invStdDev!, stash)];
});

/**
 * GroupNormalization (opset 18): the channels of X [N, C, D...] split into num_groups groups, each
 * (n, group) standardized over its channels and D..., then · scale + bias. Opsets 18-20 give scale
 * and bias per group ([num_groups]); opset 21 per channel ([C]), and adds stash_type.
 */
registerOnnxOp('GroupNormalization', (ctx) => {
  const x = ctx.tensor(0);
  requireFloat(ctx, x);
  if (x.rank < 2) ctx.fail(`X must be [N, C, ...], got shape ${shapeText(x)}`);
  const groups = ctx.requiredInt('num_groups');
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  if (groups < 1 || c % groups !== 0) ctx.fail(`num_groups ${groups} must divide the ${c} channels of X`);
  const { compute } = stashDType(ctx, x);
  const rows = ops.reshape(ops.cast(x, compute), [n, groups, x.size / Math.max(1, n * groups)]);
  const y = ops.cast(ops.reshape(standardizeTrailing(rows, 2, ctx.float('epsilon', 1e-5), false).y, x.shape), x.dtype);
  const perChannel = (p: Tensor, name: string): Tensor => {
    const want = ctx.opset >= 21 ? c : groups;
    if (p.rank !== 1 || p.shape[0] !== want) ctx.fail(`${name} must have shape [${want}] (${ctx.opset >= 21 ? 'one per channel' : 'one per group'} at opset ${ctx.opset}), got ${shapeText(p)}`);
    return alongChannels(ctx, ctx.opset >= 21 ? p : ops.repeatInterleave(p, c / groups, 0), x, name);
  };
  return [ops.add(ops.mul(y, perChannel(ctx.tensor(1), 'scale')), perChannel(ctx.tensor(2), 'bias'))];
});

/**
 * LRN across channels of X [N, C, D...]: Y = X / (bias + alpha / size · square_sum)^beta, where
 * square_sum sums X² over the channels c − floor((size−1)/2) .. c + ceil((size−1)/2) that exist
 * (zero padding), computed as `size` shifted slices of the padded squares.
 */
registerOnnxOp('LRN', (ctx) => {
  const x = ctx.tensor(0);
  requireFloat(ctx, x);
  if (x.rank < 2) ctx.fail(`X must be [N, C, ...], got shape ${shapeText(x)}`);
  const size = ctx.requiredInt('size');
  if (size < 1) ctx.fail(`size must be positive, got ${size}`);
  const alpha = ctx.float('alpha', 1e-4), beta = ctx.float('beta', 0.75), bias = ctx.float('bias', 1);
  const c = x.shape[1]!;
  const padded = padAxis(ops.mul(x, x), 1, Math.floor((size - 1) / 2), Math.ceil((size - 1) / 2));
  let squareSum = ops.narrow(padded, 1, 0, c);
  for (let k = 1; k < size; k++) squareSum = ops.add(squareSum, ops.narrow(padded, 1, k, c));
  return [ops.div(x, ops.pow(ops.add(ops.mul(squareSum, alpha / size), bias), beta))];
});

/**
 * MeanVarianceNormalization: (X − mean) / (sqrt(var) + 1e-9) over `axes` (default [0, 2, 3]), the
 * variance taken of the centered values (ONNX writes E[X²] − E[X]², the same value, which can
 * round below zero). Opset 1's form (Caffe's MVN, per sample) maps across_channels to the axes and
 * normalize_variance=0 to centering only.
 */
registerOnnxOp('MeanVarianceNormalization', (ctx) => {
  const x = ctx.tensor(0);
  requireFloat(ctx, x);
  let axes: number[];
  let scaleVariance = true;
  if (ctx.opset < 9) {
    axes = range(ctx.int('across_channels', 0) !== 0 ? 1 : 2, x.rank);
    scaleVariance = ctx.int('normalize_variance', 1) !== 0;
  } else {
    axes = ctx.intList('axes', [0, 2, 3]).map((a) => onnxAxis(ctx, a, x.rank, 'axes entry'));
  }
  const centered = ops.sub(x, ops.mean(x, axes, true));
  if (!scaleVariance) return [centered];
  const std = ops.sqrt(ops.mean(ops.mul(centered, centered), axes, true));
  return [ops.div(centered, ops.add(std, 1e-9))];
});

/**
 * LpNormalization: X / ||X||_p along `axis` (default −1), p 1 or 2 (default 2). Where the norm is
 * 0 (so is every entry) the result is 0, as ONNX's reference gives: the norm is taken as 1 there.
 */
registerOnnxOp('LpNormalization', (ctx) => {
  const x = ctx.tensor(0);
  requireFloat(ctx, x);
  if (x.rank === 0) ctx.fail('X must have at least one dimension');
  const axis = onnxAxis(ctx, ctx.int('axis', -1), x.rank);
  const p = ctx.int('p', 2);
  if (p !== 1 && p !== 2) ctx.fail(`p must be 1 or 2, got ${p}`);
  const norm = ops.norm(x, p, axis, true);
  return [ops.div(x, ops.where(ops.eq(norm, 0), ops.onesLike(norm), norm))];
});
