// Derivative rules of the fused attention primitives (ops/primitives.ts `attention` and
// `attentionGrad`), written with ops so that higher-order reverse mode, forward mode and tracing
// work through the fused path like through the composite.
//
// Notation per batch entry: S = scale·q·kᵀ (+ the causal mask: −inf above the diagonal),
// P = softmax(S) along the keys, O = P·v. For an output cotangent G:
//   dP = G·vᵀ,  D = rowsum(P∘dP) (= rowsum(G∘O)),  dS = P∘(dP − D),
//   dq = scale·dS·k,  dk = scale·dSᵀ·q,  dv = Pᵀ·G                         (attentionGrad)
// The rules below recompute P with ops (the composite's matmul + mask + softmax): they run only in
// forward mode and higher-order differentiation, where the fused kernels' savings do not matter.
// Masked entries have P = 0, so every product that reaches a masked position is finite: no −inf
// ever meets a 0.
import type { Tensor } from '../../core/tensor.js';
import type { AttentionAttrs } from '../primitives.js';
import { bind } from '../dispatch.js';
import { full, arange, zerosLike } from '../creation.js';
import { add, sub, mul, neg, where, le } from '../elementwise.js';
import { matmul } from '../linalg.js';
import { reshape, transpose, narrow } from '../shape.js';
import { cat } from '../combine.js';
import { sum } from '../reduce.js';
import { softmax } from './softmax.js';

/** 0 where key j may be attended by query i (j <= i), −inf elsewhere: [L, S] in the scores' dtype. */
export function causalAdditiveMask(l: number, s: number, scores: Tensor): Tensor {
  const opts = { backend: scores.backend };
  const allowed = le(reshape(arange(s, undefined, 1, opts), [1, s]), reshape(arange(l, undefined, 1, opts), [l, 1]));
  return where(allowed, full([], 0, { dtype: scores.dtype, ...opts }), full([], -Infinity, { dtype: scores.dtype, ...opts }));
}

/** P = softmax(scale·q·kᵀ (+ causal mask)) along the keys, with ops. */
function attentionWeights(q: Tensor, k: Tensor, { scale, causal }: AttentionAttrs): Tensor {
  const scores = mul(matmul(q, transpose(k, -2, -1)), scale);
  const l = q.shape[q.rank - 2]!, s = k.shape[k.rank - 2]!;
  return softmax(causal ? add(scores, causalAdditiveMask(l, s, scores)) : scores, -1);
}

const rowSum = (x: Tensor): Tensor => sum(x, -1, true);
const mT = (x: Tensor): Tensor => transpose(x, -2, -1);
/** a + b where either may be absent (a zero). */
const plus = (a: Tensor | undefined, b: Tensor | undefined): Tensor | undefined => (a === undefined ? b : b === undefined ? a : add(a, b));

/** dq, dk and dv as views of attentionGrad's packed 1-D output (see PrimitiveAttrs['attentionGrad']). */
export function unpackAttentionGrad(flat: Tensor, q: Tensor, k: Tensor, v: Tensor): [Tensor, Tensor, Tensor] {
  const nq = q.size, nk = k.size, nv = v.size;
  return [
    reshape(narrow(flat, 0, 0, nq), q.shape),
    reshape(narrow(flat, 0, nq, nk), k.shape),
    reshape(narrow(flat, 0, nq + nk, nv), v.shape),
  ];
}

/** The vjp of attention: the fused backward kernel (attentionGrad), unpacked. */
export function attentionVjp(g: Tensor, [q, k, v]: readonly Tensor[], attrs: AttentionAttrs, needsGrad: readonly boolean[]): (Tensor | undefined)[] {
  const grads = unpackAttentionGrad(bind('attentionGrad', [q!, k!, v!, g], attrs), q!, k!, v!);
  return grads.map((d, i) => (needsGrad[i] === false ? undefined : d));
}

/** The tangent of P for tangents of q and k: P∘(tS − rowsum(P∘tS)), tS = scale·(tq·kᵀ + q·tkᵀ). */
function weightsTangent(p: Tensor, q: Tensor, k: Tensor, tq: Tensor | undefined, tk: Tensor | undefined, scale: number): Tensor | undefined {
  const ts = plus(tq === undefined ? undefined : matmul(tq, mT(k)), tk === undefined ? undefined : matmul(q, mT(tk)));
  if (ts === undefined) return undefined;
  const scaled = mul(ts, scale);
  return mul(p, sub(scaled, rowSum(mul(p, scaled))));
}

/** The jvp of attention: tO = tP·v + P·tv. */
export function attentionJvp([tq, tk, tv]: readonly (Tensor | undefined)[], [q, k, v]: readonly Tensor[], attrs: AttentionAttrs): Tensor | undefined {
  if (tq === undefined && tk === undefined && tv === undefined) return undefined;
  const p = attentionWeights(q!, k!, attrs);
  const tp = weightsTangent(p, q!, k!, tq, tk, attrs.scale);
  return plus(tp === undefined ? undefined : matmul(tp, v!), tv === undefined ? undefined : matmul(p, tv));
}

/** What attentionGrad computes, with ops: P, dP, D and dS of the file comment. */
function backwardParts(q: Tensor, k: Tensor, v: Tensor, g: Tensor, attrs: AttentionAttrs): { p: Tensor; dp: Tensor; d: Tensor; ds: Tensor } {
  const p = attentionWeights(q, k, attrs);
  const dp = matmul(g, mT(v));
  const d = rowSum(mul(p, dp));
  return { p, dp, d, ds: mul(p, sub(dp, d)) };
}

/**
 * The vjp of attentionGrad(q, k, v, G) for cotangents (cq, ck, cv) of its three outputs: reverse
 * mode through the formulas of the file comment, one line per step.
 */
export function attentionGradVjp(cFlat: Tensor, [q, k, v, g]: readonly Tensor[], attrs: AttentionAttrs, needsGrad: readonly boolean[]): (Tensor | undefined)[] {
  const { scale } = attrs;
  const [cq, ck, cv] = unpackAttentionGrad(cFlat, q!, k!, v!);
  const { p, dp, d, ds } = backwardParts(q!, k!, v!, g!, attrs);
  // dq = scale·dS·k and dk = scale·dSᵀ·q.
  const cds = mul(add(matmul(cq, mT(k!)), matmul(q!, mT(ck))), scale);
  let gk = mul(matmul(mT(ds), cq), scale);
  let gq = mul(matmul(ds, ck), scale);
  // dv = Pᵀ·G.
  let cp = matmul(g!, mT(cv));
  let gg = matmul(p, cv);
  // dS = P∘(dP − D).
  cp = add(cp, mul(cds, sub(dp, d)));
  let cdp = mul(cds, p);
  const cd = neg(rowSum(cdp));
  // D = rowsum(P∘dP).
  cp = add(cp, mul(cd, dp));
  cdp = add(cdp, mul(cd, p));
  // dP = G·vᵀ.
  gg = add(gg, matmul(cdp, v!));
  const gv = matmul(mT(cdp), g!);
  // P = softmax(S), S = scale·q·kᵀ + mask.
  const cs = mul(mul(p, sub(cp, rowSum(mul(cp, p)))), scale);
  gq = add(gq, matmul(cs, k!));
  gk = add(gk, matmul(mT(cs), q!));
  return [gq, gk, gv, gg].map((x, i) => (needsGrad[i] === false ? undefined : x));
}

/** The jvp of attentionGrad: forward mode through the same formulas, packed like its output. */
export function attentionGradJvp(tangents: readonly (Tensor | undefined)[], [q, k, v, g]: readonly Tensor[], attrs: AttentionAttrs): Tensor | undefined {
  if (tangents.every((t) => t === undefined)) return undefined;
  const { scale } = attrs;
  const [tq, tk, tv, tg] = [q!, k!, v!, g!].map((x, i) => tangents[i] ?? zerosLike(x)) as [Tensor, Tensor, Tensor, Tensor];
  const { p, dp, d, ds } = backwardParts(q!, k!, v!, g!, attrs);
  const tp = weightsTangent(p, q!, k!, tq, tk, scale)!;
  const tdp = add(matmul(tg, mT(v!)), matmul(g!, mT(tv)));
  const td = rowSum(add(mul(tp, dp), mul(p, tdp)));
  const tds = add(mul(tp, sub(dp, d)), mul(p, sub(tdp, td)));
  const tdq = mul(add(matmul(tds, k!), matmul(ds, tk)), scale);
  const tdk = mul(add(matmul(mT(tds), q!), matmul(mT(ds), tq)), scale);
  const tdv = add(matmul(mT(tp), g!), matmul(mT(p), tg));
  return cat([reshape(tdq, [-1]), reshape(tdk, [-1]), reshape(tdv, [-1])], 0);
}
