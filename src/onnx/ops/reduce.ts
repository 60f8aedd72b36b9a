// ONNX reductions: Reduce*, ArgMax/ArgMin, CumSum, CumProd, TopK.

import type { Tensor } from '../../core/tensor.js';
import { type DType, isFloating } from '../../core/dtype.js';
import * as ops from '../../ops/index.js';
import type { NodeContext } from '../node-context.js';
import { ElemType } from '../proto.js';
import { registerOnnxOp } from '../registry.js';

/** A result computed in another dtype (an integer L2 norm, a log) cast back to the input's, as ONNX keeps T. */
function likeInput(result: Tensor, x: Tensor): Tensor {
  return result.dtype === x.dtype ? result : ops.cast(result, x.dtype);
}

/** x in a floating dtype (integers go to float32) for reductions that take roots or logs. */
function floating(x: Tensor): Tensor {
  return isFloating(x.dtype) ? x : ops.cast(x, 'float32');
}

/**
 * Pads `x` along one axis with `before` and `after` entries of `value` (default 0; tessera's pad
 * lists [before, after] pairs from the last axis backwards).
 */
export function padAxis(x: Tensor, axis: number, before: number, after: number, value = 0): Tensor {
  const pads: number[] = [];
  for (let a = x.rank - 1; a >= axis; a--) pads.push(a === axis ? before : 0, a === axis ? after : 0);
  return ops.pad(x, pads, 'constant', value);
}

/** Normalizes a possibly negative ONNX axis, failing with the node's name when out of range. */
export function onnxAxis(ctx: NodeContext, axis: number, rank: number, name = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= Math.max(rank, 1)) {
    ctx.fail(`${name} ${axis} is out of range for a rank-${rank} input; it must be in [${-rank}, ${Math.max(rank, 1) - 1}]`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Whether some reduced axis has size 0 (ONNX 18 defines Max of nothing as -inf, Min as +inf). */
function isEmptyOver(x: Tensor, axes: readonly number[]): boolean {
  return axes.some((a) => x.shape[a] === 0);
}

/** The range of values a dtype holds: ±inf for floats, the storage's bounds for integers (int32's for INT64). */
function valueRange(dtype: DType): { min: number; max: number } {
  switch (dtype) {
    case 'int32': return { min: -(2 ** 31), max: 2 ** 31 - 1 };
    case 'int8': return { min: -128, max: 127 };
    case 'uint8': return { min: 0, max: 255 };
    case 'bool': return { min: 0, max: 1 };
    default: return { min: -Infinity, max: Infinity };
  }
}

/** The result of reducing `axes` of x when every entry is `value` (an empty-set reduction). */
function filledResult(x: Tensor, axes: readonly number[], keepdims: boolean, value: number): Tensor {
  const shape = keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  return ops.full(shape, x.dtype === 'bool' ? value !== 0 : value, { dtype: x.dtype, backend: x.backend });
}

/**
 * The Reduce* family. The axes are an attribute until they become the optional second input
 * (ReduceSum at opset 13, the others at 18); with no axes every axis is reduced, unless
 * noop_with_empty_axes=1 (which came with the axes input), where the input passes through.
 * keepdims (default 1) keeps the reduced axes as size 1. The output keeps the input's type.
 */
function registerReduce(opType: string, axesInputFrom: number, reduce: (x: Tensor, axes: number[], keepdims: boolean) => Tensor): void {
  registerOnnxOp(opType, (ctx) => {
    const x = ctx.tensor(0);
    const axesAreInput = ctx.opset >= axesInputFrom;
    const given = axesAreInput ? ctx.optionalInts(1, []) : ctx.intList('axes', []);
    if (given.length === 0 && axesAreInput && ctx.int('noop_with_empty_axes', 0) !== 0) return [x];
    const axes = given.length === 0 ? [...x.shape.keys()] : given.map((a) => onnxAxis(ctx, a, x.rank, 'axes entry'));
    if (new Set(axes).size !== axes.length) ctx.fail(`axes [${given.join(', ')}] name an axis twice`);
    const keepdims = ctx.int('keepdims', 1) !== 0;
    return [likeInput(reduce(x, axes, keepdims), x)];
  });
}

registerReduce('ReduceSum', 13, (x, axes, k) => ops.sum(x, axes, k));
// Integer means are the truncated integer quotient (as onnxruntime divides).
registerReduce('ReduceMean', 18, (x, axes, k) => {
  if (isFloating(x.dtype)) return ops.mean(x, axes, k);
  const n = axes.reduce((p, a) => p * x.shape[a]!, 1);
  return ops.div(ops.sum(x, axes, k), n, { roundingMode: 'trunc' });
});
registerReduce('ReduceMax', 18, (x, axes, k) => (isEmptyOver(x, axes) ? filledResult(x, axes, k, valueRange(x.dtype).min) : ops.max(x, axes, k)));
registerReduce('ReduceMin', 18, (x, axes, k) => (isEmptyOver(x, axes) ? filledResult(x, axes, k, valueRange(x.dtype).max) : ops.min(x, axes, k)));
registerReduce('ReduceProd', 18, (x, axes, k) => ops.prod(x, axes, k));
registerReduce('ReduceL1', 18, (x, axes, k) => ops.sum(ops.abs(x), axes, k));
registerReduce('ReduceL2', 18, (x, axes, k) => ops.norm(floating(x), 2, axes, k));
registerReduce('ReduceSumSquare', 18, (x, axes, k) => ops.sum(ops.mul(x, x), axes, k));
registerReduce('ReduceLogSum', 18, (x, axes, k) => ops.log(ops.sum(floating(x), axes, k)));
// logsumexp subtracts the max first, so large inputs do not overflow.
registerReduce('ReduceLogSumExp', 18, (x, axes, k) => ops.logsumexp(floating(x), axes, k));

/**
 * ArgMax / ArgMin along `axis` (default 0), keepdims (default 1); the first extreme index, or the
 * last with select_last_index=1 (found as the first one of the reversed axis). Output INT64.
 */
function registerArgReduce(opType: 'ArgMax' | 'ArgMin', arg: (x: Tensor, axis: number, keepdim: boolean) => Tensor): void {
  registerOnnxOp(opType, (ctx) => {
    const x = ctx.tensor(0);
    if (x.rank === 0) ctx.fail('the input must have at least one dimension');
    const axis = onnxAxis(ctx, ctx.int('axis', 0), x.rank);
    const keepdims = ctx.int('keepdims', 1) !== 0;
    if (x.shape[axis] === 0) ctx.fail(`axis ${axis} of the input (shape [${x.shape.join(', ')}]) is empty: there is no extreme value to index`);
    let index: Tensor;
    if (ctx.int('select_last_index', 0) !== 0) {
      index = ops.sub(x.shape[axis]! - 1, arg(ops.flip(x, axis), axis, keepdims));
    } else {
      index = arg(x, axis, keepdims);
    }
    return [ctx.output(index, ElemType.INT64)];
  });
}

registerArgReduce('ArgMax', (x, axis, k) => ops.argmax(x, axis, k));
registerArgReduce('ArgMin', (x, axis, k) => ops.argmin(x, axis, k));

/**
 * CumSum along the axis given as input 1 (a scalar). exclusive=1 leaves each element out of its
 * own sum (the sums shift by one, starting at 0); reverse=1 sums from the end of the axis.
 */
registerOnnxOp('CumSum', (ctx) => {
  const x = ctx.tensor(0);
  const axisValues = ctx.ints(1);
  if (axisValues.length !== 1) ctx.fail(`the axis input must hold one value, got ${axisValues.length}`);
  if (x.rank === 0) return [ops.cumsum(x, 0)];
  const axis = onnxAxis(ctx, axisValues[0]!, x.rank);
  const n = x.shape[axis]!;
  const reverse = ctx.int('reverse', 0) !== 0;
  let y = reverse ? ops.flip(x, axis) : x;
  if (ctx.int('exclusive', 0) !== 0 && n > 0) y = padAxis(ops.narrow(y, axis, 0, n - 1), axis, 1, 0);
  y = ops.cumsum(y, axis);
  return [reverse ? ops.flip(y, axis) : y];
});

/**
 * The running product of x along `axis` (x[0], x[0]·x[1], ...), as a log-depth scan: each of the
 * ceil(log2 n) steps multiplies every entry by the partial product `shift` places before it
 * (entries before the start take 1). tessera has no cumprod primitive; this keeps to elementwise
 * ops, so zeros, negatives and integers are exact (exp(cumsum(log x)) would not be) and it stays
 * differentiable.
 */
function cumprod(x: Tensor, axis: number): Tensor {
  const n = x.shape[axis]!;
  let y = x;
  for (let shift = 1; shift < n; shift *= 2) {
    const before = ops.narrow(y, axis, 0, n - shift);
    y = ops.mul(y, padAxis(before, axis, shift, 0, 1));
  }
  return y;
}

/**
 * CumProd (opset 26) along the axis given as input 1 (a scalar): exclusive=1 leaves each element
 * out of its own product (the products shift by one, starting at 1); reverse=1 runs from the end.
 */
registerOnnxOp('CumProd', (ctx) => {
  const x = ctx.tensor(0);
  const axisValues = ctx.ints(1);
  if (axisValues.length !== 1) ctx.fail(`the axis input must hold one value, got ${axisValues.length}`);
  if (x.dtype === 'bool') ctx.fail('X must be numeric, got BOOL');
  if (x.rank === 0) return [x];
  const axis = onnxAxis(ctx, axisValues[0]!, x.rank);
  const n = x.shape[axis]!;
  const reverse = ctx.int('reverse', 0) !== 0;
  let y = reverse ? ops.flip(x, axis) : x;
  if (ctx.int('exclusive', 0) !== 0 && n > 0) y = padAxis(ops.narrow(y, axis, 0, n - 1), axis, 1, 0, 1);
  y = cumprod(y, axis);
  return [reverse ? ops.flip(y, axis) : y];
});

/**
 * TopK: the k largest (or, with largest=0, smallest) entries along `axis` (default -1), k an
 * attribute before opset 10 and a one-element input after. Equal values come lowest index first
 * (tessera's sort is stable). sorted=0 allows any order; they come sorted anyway. Outputs the
 * values and their INT64 indices.
 */
registerOnnxOp('TopK', (ctx) => {
  const x = ctx.tensor(0);
  let k: number;
  if (ctx.opset < 10) {
    k = ctx.requiredInt('k');
  } else {
    const kValues = ctx.ints(1);
    if (kValues.length !== 1) ctx.fail(`the K input must hold one value, got ${kValues.length}`);
    k = kValues[0]!;
  }
  if (x.rank === 0) ctx.fail('the input must have at least one dimension');
  const axis = onnxAxis(ctx, ctx.int('axis', -1), x.rank);
  const n = x.shape[axis]!;
  if (!Number.isInteger(k) || k < 0 || k > n) ctx.fail(`k = ${k} must be in [0, ${n}] (the size of axis ${axis})`);
  const { values, indices } = ops.topk(x, k, axis, { largest: ctx.int('largest', 1) !== 0 });
  return [values, ctx.output(indices, ElemType.INT64)];
});
