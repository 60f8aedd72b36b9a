// Forward-mode rules: for each primitive, the output tangent given input tangents (undefined = zero).
// Written with ops, so they compose with reverse mode (forward-over-reverse) and with tracing.
import type { Tensor } from '../core/tensor.js';
import { isFloating } from '../core/dtype.js';
import { bind } from '../ops/dispatch.js';
import type { PrimitiveAttrs, PrimitiveName } from '../ops/primitives.js';
import {
  add, sub, mul, div, neg, where, gt, lt, eq, ge, sign, cos, sin, exp, log, pow, cast, logicalAnd,
  geluGrad, geluSecondDerivative, reluGrad, broadcastTo,
} from '../ops/elementwise.js';
import { zerosLike } from '../ops/creation.js';
import { sum, cumsum, mean } from '../ops/reduce.js';
import { layerNormCoreJacobian } from './vjp-rules.js';
import { reshape } from '../ops/shape.js';
import { matmul } from '../ops/linalg.js';
import { convDirectJvp, convWeightGradJvp } from '../ops/nn/conv.js';
import { attentionJvp, attentionGradJvp } from '../ops/nn/attention-rules.js';
import { keepdimShape, prodInputGradient, extremumMask } from './rule-helpers.js';
import * as linalgRules from '../ops/matrix/rules.js';

export type JvpRule<P extends PrimitiveName> = (
  tangents: readonly (Tensor | undefined)[],
  inputs: readonly Tensor[],
  out: Tensor,
  attrs: PrimitiveAttrs[P],
) => Tensor | undefined;

type Rules = { [P in PrimitiveName]: JvpRule<P> };

/** A rule for an op linear in its first input: the tangent goes through the same op. */
function linear<P extends PrimitiveName>(prim: P): JvpRule<P> {
  return ([t], _inputs, _out, attrs) => (t === undefined ? undefined : bind(prim, [t], attrs));
}

/** Sum of the terms that exist (undefined terms are zero tangents). */
function sumTerms(...terms: (Tensor | undefined)[]): Tensor | undefined {
  let acc: Tensor | undefined;
  for (const t of terms) if (t !== undefined) acc = acc === undefined ? t : add(acc, t);
  return acc;
}
const scale = (t: Tensor | undefined, f: () => Tensor): Tensor | undefined => (t === undefined ? undefined : mul(t, f()));
const noTangent = (): undefined => undefined;

export const jvpRules: Rules = {
  neg: ([t]) => (t === undefined ? undefined : neg(t)),
  abs: ([t], [x]) => scale(t, () => sign(x!)),
  exp: ([t], _i, out) => scale(t, () => out),
  log: ([t], [x]) => (t === undefined ? undefined : div(t, x!)),
  log1p: ([t], [x]) => (t === undefined ? undefined : div(t, add(x!, 1))),
  expm1: ([t], _i, out) => scale(t, () => add(out, 1)),
  sqrt: ([t], _i, out) => (t === undefined ? undefined : div(t, mul(out, 2))),
  rsqrt: ([t], [x], out) => scale(t, () => mul(div(out, x!), -0.5)),
  sin: ([t], [x]) => scale(t, () => cos(x!)),
  cos: ([t], [x]) => scale(t, () => neg(sin(x!))),
  tanh: ([t], _i, out) => scale(t, () => sub(1, mul(out, out))),
  sigmoid: ([t], _i, out) => scale(t, () => mul(out, sub(1, out))),
  erf: ([t], [x]) => scale(t, () => mul(exp(neg(mul(x!, x!))), 2 / Math.sqrt(Math.PI))),
  gelu: ([t], [x]) => scale(t, () => geluGrad(x!)),
  geluGrad: ([t], [x]) => scale(t, () => geluSecondDerivative(x!)),
  relu: ([t], [x]) => (t === undefined ? undefined : reluGrad(x!, t)),
  sign: ([t]) => (t === undefined ? undefined : zerosLike(t)),
  floor: ([t]) => (t === undefined ? undefined : zerosLike(t)),
  ceil: ([t]) => (t === undefined ? undefined : zerosLike(t)),
  round: ([t]) => (t === undefined ? undefined : zerosLike(t)),
  logicalNot: noTangent,
  isnan: noTangent,
  add: ([ta, tb]) => sumTerms(ta, tb),
  sub: ([ta, tb]) => sumTerms(ta, tb === undefined ? undefined : neg(tb)),
  mul: ([ta, tb], [x, y]) => sumTerms(scale(ta, () => y!), scale(tb, () => x!)),
  div: ([ta, tb], [, y], out) => {
    const num = sumTerms(ta, tb === undefined ? undefined : neg(mul(tb, out)));
    return num === undefined ? undefined : div(num, y!);
  },
  pow: ([ta, tb], [x, y], out) => sumTerms(
    ta === undefined ? undefined : where(eq(y!, 0), 0, mul(ta, mul(y!, pow(x!, sub(y!, 1))))),
    tb === undefined ? undefined : where(logicalAnd(eq(x!, 0), ge(y!, 0)), 0, mul(tb, mul(out, log(x!)))),
  ),
  maximum: ([ta, tb], [x, y]) => sumTerms(
    scale(ta, () => where(gt(x!, y!), 1, where(eq(x!, y!), 0.5, 0))),
    scale(tb, () => where(gt(y!, x!), 1, where(eq(x!, y!), 0.5, 0))),
  ),
  minimum: ([ta, tb], [x, y]) => sumTerms(
    scale(ta, () => where(lt(x!, y!), 1, where(eq(x!, y!), 0.5, 0))),
    scale(tb, () => where(lt(y!, x!), 1, where(eq(x!, y!), 0.5, 0))),
  ),
  eq: noTangent, ne: noTangent, lt: noTangent, le: noTangent, gt: noTangent, ge: noTangent,
  logicalAnd: noTangent, logicalOr: noTangent,
  reluGrad: ([, tg], [x]) => (tg === undefined ? undefined : reluGrad(x!, tg)),
  where: ([, tx, ty], [c, x]) => {
    if (tx === undefined && ty === undefined) return undefined;
    return where(c!, tx ?? zerosLike(x!), ty ?? zerosLike(x!));
  },
  cast: ([t], _i, out) => (t === undefined || !isFloating(out.dtype) ? undefined : cast(t, out.dtype)),
  sum: linear('sum'),
  prod: ([t], [x], out, { axes, keepdim }) => {
    if (t === undefined) return undefined;
    const outKeep = keepdim ? out : reshape(out, keepdimShape(x!.shape, axes));
    return sum(mul(t, prodInputGradient(x!, outKeep, axes)), axes, keepdim);
  },
  max: ([t], [x], out, attrs) => (t === undefined ? undefined : sum(mul(t, extremumMask(x!, out, attrs)), attrs.axes, attrs.keepdim)),
  min: ([t], [x], out, attrs) => (t === undefined ? undefined : sum(mul(t, extremumMask(x!, out, attrs)), attrs.axes, attrs.keepdim)),
  argmax: noTangent,
  argmin: noTangent,
  softmax: ([t], _i, out, { axis }) => (t === undefined ? undefined : mul(out, sub(t, sum(mul(t, out), axis, true)))),
  logSoftmax: ([t], _i, out, { axis }) => (t === undefined ? undefined : sub(t, sum(mul(exp(out), t), axis, true))),
  attention: (tangents, inputs, _o, attrs) => attentionJvp(tangents, inputs, attrs),
  quantizedMatmul: (tangents, inputs, _o, attrs) => {
    const tx = tangents[0], tb = attrs.bias ? tangents[inputs.length - 1] : undefined;
    const weight = inputs.slice(1, attrs.symmetric ? 3 : 4);
    const product = tx === undefined ? undefined : bind('quantizedMatmul', [tx, ...weight], { ...attrs, activations: 'none', bias: false });
    return sumTerms(product, tb === undefined ? undefined : broadcastTo(tb, inputs[0]!.shape.slice(0, -1).concat([attrs.n])));
  },
  attentionGrad: (tangents, inputs, _o, attrs) => attentionGradJvp(tangents, inputs, attrs),
  layerNormCore: ([t], [x], _y, attrs) => (t === undefined ? undefined : layerNormCoreJacobian(t, x!, attrs)),
  // f = r·(g − mean(g) − y·m): linear in g; through x, dr = −r²·mean(y·tx), dy = J·tx, dm = mean(g·dy).
  layerNormCoreGrad: ([tx, tg], [x, g], out, attrs) => {
    const throughG = tg === undefined ? undefined : layerNormCoreJacobian(tg, x!, attrs);
    if (tx === undefined) return throughG;
    const rstd = bind('layerNormRstd', [x!], attrs);
    const y = bind('layerNormCore', [x!], attrs);
    const dRstd = mul(mean(mul(y, tx), -1, true), mul(mul(rstd, rstd), -1));
    const dy = layerNormCoreJacobian(tx, x!, attrs);
    const m = mean(mul(g!, y), -1, true), dm = mean(mul(g!, dy), -1, true);
    const throughX = sub(mul(out, div(dRstd, rstd)), mul(add(mul(dy, m), mul(y, dm)), rstd));
    return sumTerms(throughG, throughX);
  },
  // d rstd = −rstd²·mean(y·t) per row, y = layerNormCore(x).
  layerNormRstd: ([t], [x], rstd, attrs) =>
    (t === undefined ? undefined : mul(mean(mul(bind('layerNormCore', [x!], attrs), t), -1, true), mul(mul(rstd, rstd), -1))),
  cumsum: ([t], _i, _o, { axis }) => (t === undefined ? undefined : cumsum(t, axis)),
  matmul: ([ta, tb], [a, b]) => sumTerms(ta === undefined ? undefined : matmul(ta, b!), tb === undefined ? undefined : matmul(a!, tb)),
  reshape: linear('reshape'),
  permute: linear('permute'),
  expand: linear('expand'),
  slice: linear('slice'),
  unfold: linear('unfold'),
  contiguous: linear('contiguous'),
  // Padding a tangent adds zeros, whatever the primal's pad value.
  pad: ([t], _i, _o, { pads }) => (t === undefined ? undefined : bind('pad', [t], { pads, value: 0 })),
  sliceBackward: linear('sliceBackward'),
  unfoldBackward: linear('unfoldBackward'),
  cat: (ts, inputs, _o, attrs) => {
    if (ts.every((t) => t === undefined)) return undefined;
    return bind('cat', inputs.map((x, i) => ts[i] ?? zerosLike(x)), attrs);
  },
  flip: linear('flip'),
  gather: ([t, ], [, index], _o, attrs) => (t === undefined ? undefined : bind('gather', [t, index!], attrs)),
  scatterAdd: ([tb, , ts], [base, index, src], _o, attrs) => {
    if (tb === undefined && ts === undefined) return undefined;
    return bind('scatterAdd', [tb ?? zerosLike(base!), index!, ts ?? zerosLike(src!)], attrs);
  },
  argsort: noTangent,
  im2col: linear('im2col'),
  col2im: linear('col2im'),
  maxPoolIndices: noTangent,
  convDirect: (ts, inputs, out, attrs) => convDirectJvp(ts, inputs, out, attrs),
  convWeightGrad: (ts, inputs, _o, attrs) => convWeightGradJvp(ts, inputs, attrs),
  // No inputs, so no tangent flows in: a random draw is a constant of the differentiated function.
  randomUniform: noTangent,
  randomNormal: noTangent,
  randomInteger: noTangent,
  // Matrix decompositions and solves: ops/matrix/rules.ts.
  cholesky: ([t], _i, out) => (t === undefined ? undefined : linalgRules.choleskyJvp(t, out)),
  triangularSolve: (ts, [a], out, attrs) => linalgRules.triangularSolveJvp(ts, a!, out, attrs),
  solve: (ts, [a], out, attrs) => linalgRules.solveJvp(ts, a!, out, attrs),
  det: ([t], [a]) => (t === undefined ? undefined : linalgRules.detJvp(t, a!)),
  slogdet: ([t], [a]) => (t === undefined ? undefined : linalgRules.slogdetJvp(t, a!)),
  qr: ([t], [a], out, attrs) => (t === undefined ? undefined : linalgRules.qrJvp(t, a!, out, attrs)),
  eigh: ([t], [a], out) => (t === undefined ? undefined : linalgRules.eighJvp(t, a!, out)),
  svd: ([t], [a], out, attrs) => (t === undefined ? undefined : linalgRules.svdJvp(t, a!, out, attrs)),
};
