// Reverse-mode rules: for each primitive, the input cotangents given the output cotangent `g`.
// Written with ops, so running them with grad mode on records them (higher-order gradients) and
// running them under the tracer yields the backward graph.
import type { Tensor } from '../core/tensor.js';
import { isFloating } from '../core/dtype.js';
import { bind } from '../ops/dispatch.js';
import type { PrimitiveAttrs, PrimitiveName } from '../ops/primitives.js';
import {
  add, sub, mul, div, neg, where, gt, lt, eq, ge, sign, cos, sin, exp, log, pow, cast, logicalAnd,
  geluGrad, geluSecondDerivative, reluGrad,
} from '../ops/elementwise.js';
import { full, zerosLike } from '../ops/creation.js';
import { cumsum, mean, sum } from '../ops/reduce.js';
import { reshape, transpose } from '../ops/shape.js';
import { matmul } from '../ops/linalg.js';
import { convDirectVjp, convWeightGradVjp } from '../ops/nn/conv.js';
import { attentionVjp, attentionGradVjp } from '../ops/nn/attention-rules.js';
import { sumToShape, keepdimShape, prodInputGradient, extremumMask } from './rule-helpers.js';
import * as linalgRules from '../ops/matrix/rules.js';

export type VjpRule<P extends PrimitiveName> = (
  g: Tensor,
  inputs: readonly Tensor[],
  out: Tensor,
  attrs: PrimitiveAttrs[P],
  /**
   * Which inputs need a gradient (the others' entries are ignored). A rule may skip computing
   * those, as matmul does: the gradient of a model's input batch is a whole GEMM nobody reads.
   */
  needsGrad: readonly boolean[],
) => (Tensor | undefined)[];

const none = (): (Tensor | undefined)[] => [];

/** A matrix (or batch of them) whose last two axes are stored column-major, like the view Wᵀ of a row-major W. */
function isTransposedLayout(t: Tensor): boolean {
  if (t.rank < 2) return false;
  const rows = t.shape[t.rank - 2]!, cols = t.shape[t.rank - 1]!;
  return rows > 1 && cols > 1 && t.strides[t.rank - 2] === 1 && t.strides[t.rank - 1] === rows;
}
/**
 * layerNormCore's Jacobian (symmetric: rstd·(I − 11ᵀ/D − y·yᵀ/D) per row) applied to v, for its vjp
 * and jvp: rstd·(v − mean(v) − y·mean(v·y)) over the last axis, one primitive.
 */
export function layerNormCoreJacobian(v: Tensor, x: Tensor, attrs: PrimitiveAttrs['layerNormCore']): Tensor {
  return bind('layerNormCoreGrad', [x, v], attrs);
}

/** d rstd / dx = −rstd²·y/D per row (y = layerNormCore(x)): the vjp of layerNormRstd for a row cotangent g. */
function layerNormRstdVjp(g: Tensor, x: Tensor, rstd: Tensor, attrs: PrimitiveAttrs['layerNormRstd']): Tensor {
  const y = bind('layerNormCore', [x], attrs);
  return mul(y, mul(mul(g, mul(rstd, rstd)), -1 / x.shape[x.rank - 1]!));
}

/**
 * The vjp of f = layerNormCoreGrad(x, g) = r·(g − mean(g) − y·m), r = rstd(x), y = core(x),
 * m = mean(g·y), for a cotangent gg: linear in g with a symmetric Jacobian (dg = f(x, gg)); through x,
 * the cotangent of r is Σ gg·f / r per row and that of y is −r·(m·gg + mean(gg·y)·g), each pulled
 * back by its primitive's rule.
 */
export function layerNormCoreGradVjp(gg: Tensor, x: Tensor, g: Tensor, out: Tensor, attrs: PrimitiveAttrs['layerNormCoreGrad'], needsGrad: readonly boolean[]): (Tensor | undefined)[] {
  const dg = needsGrad[1] === false ? undefined : bind('layerNormCoreGrad', [x, gg], attrs);
  if (needsGrad[0] === false) return [undefined, dg];
  const rstd = bind('layerNormRstd', [x], attrs);
  const y = bind('layerNormCore', [x], attrs);
  const rowCotangent = div(sum(mul(gg, out), -1, true), rstd);
  const yCotangent = mul(add(mul(gg, mean(mul(g, y), -1, true)), mul(g, mean(mul(gg, y), -1, true))), neg(rstd));
  return [add(layerNormRstdVjp(rowCotangent, x, rstd, attrs), layerNormCoreJacobian(yCotangent, x, attrs)), dg];
}

const zeroGrad = (_g: Tensor, [x]: readonly Tensor[]): (Tensor | undefined)[] => [zerosLike(x!)];

export const vjpRules: { [P in PrimitiveName]: VjpRule<P> } = {
  neg: (g) => [neg(g)],
  abs: (g, [x]) => [mul(g, sign(x!))],
  exp: (g, _i, out) => [mul(g, out)],
  log: (g, [x]) => [div(g, x!)],
  log1p: (g, [x]) => [div(g, add(x!, 1))],
  expm1: (g, _i, out) => [mul(g, add(out, 1))],
  sqrt: (g, _i, out) => [div(g, mul(out, 2))],
  rsqrt: (g, [x], out) => [mul(g, mul(div(out, x!), -0.5))],
  sin: (g, [x]) => [mul(g, cos(x!))],
  cos: (g, [x]) => [neg(mul(g, sin(x!)))],
  tanh: (g, _i, out) => [mul(g, sub(1, mul(out, out)))],
  sigmoid: (g, _i, out) => [mul(g, mul(out, sub(1, out)))],
  erf: (g, [x]) => [mul(g, mul(exp(neg(mul(x!, x!))), 2 / Math.sqrt(Math.PI)))],
  gelu: (g, [x]) => [mul(g, geluGrad(x!))],
  geluGrad: (g, [x]) => [mul(g, geluSecondDerivative(x!))],
  relu: (g, [x]) => [reluGrad(x!, g)],
  sign: zeroGrad,
  floor: zeroGrad,
  ceil: zeroGrad,
  round: zeroGrad,
  logicalNot: none,
  isnan: none,
  add: (g) => [g, g],
  sub: (g) => [g, neg(g)],
  mul: (g, [x, y]) => [mul(g, y!), mul(g, x!)],
  div: (g, [x, y]) => [div(g, y!), neg(div(mul(g, x!), mul(y!, y!)))],
  pow: (g, [x, y], out) => [
    // d/dx x^y = y x^(y-1), taken as 0 where y == 0 (PyTorch's convention).
    where(eq(y!, 0), 0, mul(g, mul(y!, pow(x!, sub(y!, 1))))),
    // d/dy x^y = x^y log x, taken as 0 where x == 0 and y >= 0.
    where(logicalAnd(eq(x!, 0), ge(y!, 0)), 0, mul(g, mul(out, log(x!)))),
  ],
  // Ties split the gradient equally, as in PyTorch.
  maximum: (g, [x, y]) => [mul(g, where(gt(x!, y!), 1, where(eq(x!, y!), 0.5, 0))), mul(g, where(gt(y!, x!), 1, where(eq(x!, y!), 0.5, 0)))],
  minimum: (g, [x, y]) => [mul(g, where(lt(x!, y!), 1, where(eq(x!, y!), 0.5, 0))), mul(g, where(lt(y!, x!), 1, where(eq(x!, y!), 0.5, 0)))],
  // Linear in g (its gradient is reluGrad again); piecewise constant in x (zero gradient).
  reluGrad: (gg, [x]) => [undefined, reluGrad(x!, gg)],
  eq: none, ne: none, lt: none, le: none, gt: none, ge: none, logicalAnd: none, logicalOr: none,
  where: (g, [c]) => [undefined, where(c!, g, 0), where(c!, 0, g)],
  cast: (g, [x]) => [isFloating(x!.dtype) ? cast(g, x!.dtype) : undefined],
  sum: (g, [x], _o, { axes, keepdim }) => [bind('expand', [keepdim ? g : reshape(g, keepdimShape(x!.shape, axes))], { shape: [...x!.shape] })],
  prod: (g, [x], out, { axes, keepdim }) => {
    const gk = keepdim ? g : reshape(g, keepdimShape(x!.shape, axes));
    return [mul(gk, prodInputGradient(x!, keepdim ? out : reshape(out, keepdimShape(x!.shape, axes)), axes))];
  },
  max: (g, [x], out, attrs) => [mul(keepdimOf(g, x!, attrs), extremumMask(x!, out, attrs))],
  min: (g, [x], out, attrs) => [mul(keepdimOf(g, x!, attrs), extremumMask(x!, out, attrs))],
  argmax: none,
  argmin: none,
  // J = diag(y) − y·yᵀ per row: g ↦ y·(g − Σ g·y).
  softmax: (g, _i, out, { axis }) => [mul(out, sub(g, sum(mul(g, out), axis, true)))],
  // softmax = exp(out): g − softmax·Σg.
  logSoftmax: (g, _i, out, { axis }) => [sub(g, mul(exp(out), sum(g, axis, true)))],
  layerNormCore: (g, [x], _y, attrs) => [layerNormCoreJacobian(g, x!, attrs)],
  layerNormCoreGrad: (gg, [x, g], out, attrs, needsGrad) => layerNormCoreGradVjp(gg, x!, g!, out, attrs, needsGrad),
  layerNormRstd: (g, [x], rstd, attrs) => [layerNormRstdVjp(g, x!, rstd, attrs)],
  attention: (g, inputs, _o, attrs, needsGrad) => attentionVjp(g, inputs, attrs, needsGrad),
  // Linear in x: the input gradient multiplies by Ŵ the other way round (weight-only; for the dynamic
  // mode the straight-through estimator, since its rounding has no gradient). Codes, scales and zero
  // points are constants of the layer.
  quantizedMatmul: (g, inputs, _o, attrs, needsGrad) => {
    const weight = inputs.slice(1, attrs.symmetric ? 3 : 4);
    const grads: (Tensor | undefined)[] = [
      needsGrad[0] === false ? undefined : bind('quantizedMatmul', [g, ...weight], { ...attrs, transposed: !attrs.transposed, activations: 'none', bias: false }),
      ...weight.map(() => undefined),
    ];
    // The bias (a last input) gets the output gradient summed over the rows.
    if (attrs.bias) grads.push(needsGrad[inputs.length - 1] === false ? undefined : sumToShape(g, [attrs.n]));
    return grads;
  },
  attentionGrad: (c, inputs, _o, attrs, needsGrad) => attentionGradVjp(c, inputs, attrs, needsGrad),
  cumsum: (g, _i, _o, { axis }) => [bind('flip', [cumsum(bind('flip', [g], { axes: [axis] }), axis)], { axes: [axis] })],
  // Each gradient is produced in its input's memory layout: for an input that is a transposed view
  // (a Linear weight used as Wᵀ), computing (gᵀ·a)ᵀ instead of aᵀ·g costs the same GEMM but makes
  // the gradient that reaches the weight through the permute contiguous, so optimizers and
  // accumulation read it without a strided copy.
  matmul: (g, [a, b], _o, _a, needsGrad) => [
    !needsGrad[0] ? undefined : isTransposedLayout(a!) ? transpose(matmul(b!, transpose(g))) : matmul(g, transpose(b!)),
    !needsGrad[1] ? undefined : isTransposedLayout(b!) ? transpose(matmul(transpose(g), a!)) : matmul(transpose(a!), g),
  ],
  reshape: (g, [x]) => [reshape(g, x!.shape)],
  permute: (g, _i, _o, { perm }) => {
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => { inverse[p] = i; });
    return [bind('permute', [g], { perm: inverse })];
  },
  expand: (g, [x]) => [sumToShape(g, x!.shape)],
  slice: (g, [x], _o, { starts, steps }) => [bind('sliceBackward', [g], { inputShape: [...x!.shape], starts, steps })],
  unfold: (g, [x], _o, { axis, size, step }) => [bind('unfoldBackward', [g], { inputShape: [...x!.shape], axis, size, step })],
  contiguous: (g) => [g],
  pad: (g, [x], _o, { pads }) => [bind('slice', [g], { starts: pads.map(([b]) => b), steps: pads.map(() => 1), sizes: [...x!.shape] })],
  sliceBackward: (g, [x], _o, { starts, steps }) => [bind('slice', [g], { starts, steps, sizes: [...x!.shape] })],
  unfoldBackward: (g, _i, _o, { axis, size, step }) => [bind('unfold', [g], { axis, size, step })],
  cat: (g, inputs, _o, { axis }) => {
    let start = 0;
    return inputs.map((x) => {
      const starts = g.shape.map((_, i) => (i === axis ? start : 0));
      start += x.shape[axis]!;
      return bind('slice', [g], { starts, steps: g.shape.map(() => 1), sizes: [...x.shape] });
    });
  },
  flip: (g, _i, _o, { axes }) => [bind('flip', [g], { axes })],
  // The base is one zero broadcast (stride 0) rather than a zero-filled copy of x's shape: a backend
  // can start the sum from fresh zeroed memory instead of copying zeros in (max pooling's gradient).
  gather: (g, [x, index], _o, { axis }) => [bind('scatterAdd', [bind('expand', [full([], 0, { dtype: x!.dtype, backend: x!.backend })], { shape: [...x!.shape] }), index!, g], { axis }), undefined],
  scatterAdd: (g, [, index], _o, { axis }) => [g, undefined, bind('gather', [g, index!], { axis })],
  argsort: none,
  im2col: (g, [x], _o, attrs) => [bind('col2im', [g], { ...attrs, inputShape: [...x!.shape] })],
  col2im: (g, _i, _o, { kernel, stride, dilation, pads, groups }) => [bind('im2col', [g], { kernel, stride, dilation, pads, groups })],
  maxPoolIndices: none,
  convDirect: (g, inputs, _o, attrs, needsGrad) => convDirectVjp(g, inputs, attrs, needsGrad),
  convWeightGrad: (g, inputs, _o, attrs, needsGrad) => convWeightGradVjp(g, inputs, attrs, needsGrad),
  // Random draws have no inputs, so nothing to pull back (their outputs are constants of the
  // differentiated function, like torch.rand's).
  randomUniform: none,
  randomNormal: none,
  randomInteger: none,
  // Matrix decompositions and solves: ops/matrix/rules.ts.
  cholesky: (g, _i, out) => [linalgRules.choleskyVjp(g, out)],
  triangularSolve: (g, [a], out, attrs, needsGrad) => linalgRules.triangularSolveVjp(g, a!, out, attrs, needsGrad),
  solve: (g, [a], out, attrs, needsGrad) => linalgRules.solveVjp(g, a!, out, attrs, needsGrad),
  det: (g, [a]) => [linalgRules.detVjp(g, a!)],
  slogdet: (g, [a]) => [linalgRules.slogdetVjp(g, a!)],
  qr: (g, [a], out, attrs) => [linalgRules.qrVjp(g, a!, out, attrs)],
  eigh: (g, [a], out) => [linalgRules.eighVjp(g, a!, out)],
  svd: (g, [a], out, attrs) => [linalgRules.svdVjp(g, a!, out, attrs)],
};

function keepdimOf(g: Tensor, x: Tensor, { axes, keepdim }: { axes: number[]; keepdim: boolean }): Tensor {
  return keepdim ? g : reshape(g, keepdimShape(x.shape, axes));
}




