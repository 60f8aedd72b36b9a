// Reductions over one or several axes with keepdim: sum mean prod max min argmax argmin var std
// logsumexp cumsum.
import { defaultFloatDType, isFloating } from '../core/dtype.js';
import { check } from '../core/errors.js';
import { normalizeAxes, normalizeAxis } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { bind } from './dispatch.js';
import { add, cast, exp, log, mul, sub, div, sqrt, where, isnan, abs, eq, pow } from './elementwise.js';
import { reshape } from './shape.js';
import type { ReduceOp } from './primitives.js';

export type Axes = number | readonly number[];

/** Normalized axes; an empty list means all axes (PyTorch's legacy rule for dim=[]). */
function axesOf(x: Tensor, axes: Axes | undefined, op: string): number[] {
  if (axes === undefined || (typeof axes !== 'number' && axes.length === 0)) return [...x.shape.keys()];
  const ax = normalizeAxes(axes, x.rank, op);
  // A 0-d tensor accepts axis 0 or -1 (as in PyTorch) and has nothing to reduce.
  return x.rank === 0 ? [] : ax;
}

function reduce(op: ReduceOp, x: Tensor, axes: Axes | undefined, keepdim: boolean): Tensor {
  const ax = axesOf(x, axes, op);
  const input = x.dtype === 'bool' && (op === 'sum' || op === 'prod') ? cast(x, 'int32') : x;
  return bind(op, [input], { axes: ax, keepdim });
}

export const sum = (x: Tensor, axes?: Axes, keepdim = false): Tensor => reduce('sum', x, axes, keepdim);
export const prod = (x: Tensor, axes?: Axes, keepdim = false): Tensor => reduce('prod', x, axes, keepdim);
/** The largest values over the axes (like torch.amax; NaN propagates). */
export const max = (x: Tensor, axes?: Axes, keepdim = false): Tensor => reduce('max', x, axes, keepdim);
export const min = (x: Tensor, axes?: Axes, keepdim = false): Tensor => reduce('min', x, axes, keepdim);

/** Mean over the axes; integer tensors are rejected as in PyTorch (cast to float first). */
export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  check(isFloating(x.dtype), 'mean', () => `needs a floating dtype, got ${x.dtype}; cast first, e.g. x.float().mean().`);
  const ax = axesOf(x, axes, 'mean');
  const n = ax.reduce((a, i) => a * x.shape[i]!, 1);
  return div(sum(x, ax, keepdim), n);
}

function argReduce(op: 'argmax' | 'argmin', x: Tensor, axis: number | undefined, keepdim: boolean): Tensor {
  if (axis === undefined) {
    const flat = reshape(x, [-1]);
    const r = bind(op, [flat], { axis: 0, keepdim: false });
    return keepdim ? reshape(r, x.shape.map(() => 1)) : r;
  }
  return bind(op, [x], { axis: x.rank === 0 ? 0 : normalizeAxis(axis, x.rank, op), keepdim });
}

/** Index of the largest value (of the flattened tensor when no axis is given); ties give the first. */
export const argmax = (x: Tensor, axis?: number, keepdim = false): Tensor => argReduce('argmax', x, axis, keepdim);
export const argmin = (x: Tensor, axis?: number, keepdim = false): Tensor => argReduce('argmin', x, axis, keepdim);

export interface VarOptions {
  /** Bessel's correction: 1 (the default, unbiased, like PyTorch) or 0 (population variance). */
  correction?: number;
  /** PyTorch's older spelling: true is correction 1, false is correction 0 (correction wins if both are given). */
  unbiased?: boolean;
  keepdim?: boolean;
}

export function variance(x: Tensor, axes?: Axes, opts: VarOptions = {}): Tensor {
  check(isFloating(x.dtype), 'var', () => `needs a floating dtype, got ${x.dtype}.`);
  const ax = axesOf(x, axes, 'var');
  const n = ax.reduce((a, i) => a * x.shape[i]!, 1);
  const m = mean(x, ax, true);
  const d = sub(x, m);
  const ss = sum(mul(d, d), ax, opts.keepdim ?? false);
  const correction = opts.correction ?? (opts.unbiased === false ? 0 : 1);
  return div(ss, Math.max(0, n - correction));
}
export { variance as var };

/**
 * s^(1/p) for s >= 0, with derivative 0 at s = 0 instead of inf·0 = NaN: PyTorch's convention for
 * the gradient of norm at the zero vector and of std at constant input.
 */
function rootWithZeroGradAtZero(s: Tensor, p: number): Tensor {
  const zero = eq(s, 0);
  const safe = where(zero, 1, s);
  return where(zero, 0, p === 2 ? sqrt(safe) : pow(safe, 1 / p));
}

export function std(x: Tensor, axes?: Axes, opts: VarOptions = {}): Tensor {
  return rootWithZeroGradAtZero(variance(x, axes, opts), 2);
}

/** log(sum(exp(x))) computed stably (the max is subtracted first; infinities handled like PyTorch). */
export function logsumexp(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const xf = isFloating(x.dtype) ? x : cast(x, defaultFloatDType());
  const ax = axesOf(xf, axes, 'logsumexp');
  // The log of an empty sum is -inf (PyTorch), where the max-shift below would have no max.
  if (ax.some((i) => xf.shape[i] === 0)) return add(sum(xf, ax, keepdim), -Infinity);
  const m = max(xf, ax, true).detach();
  // An infinite max would give inf - inf = NaN; shift by 0 there instead.
  const shift = where(isnan(sub(m, m)), 0, m);
  const s = log(sum(exp(sub(xf, shift)), ax, true));
  const out = add(s, shift);
  return keepdim ? out : reshape(out, xf.shape.filter((_, i) => !ax.includes(i)));
}

export function cumsum(x: Tensor, axis: number): Tensor {
  const input = x.dtype === 'bool' ? cast(x, 'int32') : x;
  if (x.rank === 0) return input;
  return bind('cumsum', [input], { axis: normalizeAxis(axis, x.rank, 'cumsum') });
}

/** L_p norm over axes (all by default). */
export function norm(x: Tensor, p = 2, axes?: Axes, keepdim = false): Tensor {
  if (p === 2) return rootWithZeroGradAtZero(sum(mul(x, x), axes, keepdim), 2);
  if (p === 1) return sum(abs(x), axes, keepdim);
  if (p === Infinity) return max(abs(x), axes, keepdim);
  return rootWithZeroGradAtZero(sum(pow(abs(x), p), axes, keepdim), p);
}

declare module '../core/tensor.js' {
  interface Tensor {
    sum(axes?: Axes, keepdim?: boolean): Tensor;
    mean(axes?: Axes, keepdim?: boolean): Tensor;
    prod(axes?: Axes, keepdim?: boolean): Tensor;
    max(axes?: Axes, keepdim?: boolean): Tensor;
    min(axes?: Axes, keepdim?: boolean): Tensor;
    argmax(axis?: number, keepdim?: boolean): Tensor;
    argmin(axis?: number, keepdim?: boolean): Tensor;
    var(axes?: Axes, opts?: VarOptions): Tensor;
    std(axes?: Axes, opts?: VarOptions): Tensor;
    logsumexp(axes?: Axes, keepdim?: boolean): Tensor;
    cumsum(axis: number): Tensor;
    norm(p?: number, axes?: Axes, keepdim?: boolean): Tensor;
  }
}

const P = Tensor.prototype;
P.sum = function (a, k) { return sum(this, a, k); };
P.mean = function (a, k) { return mean(this, a, k); };
P.prod = function (a, k) { return prod(this, a, k); };
P.max = function (a, k) { return max(this, a, k); };
P.min = function (a, k) { return min(this, a, k); };
P.argmax = function (a, k) { return argmax(this, a, k); };
P.argmin = function (a, k) { return argmin(this, a, k); };
P.var = function (a, o) { return variance(this, a, o); };
P.std = function (a, o) { return std(this, a, o); };
P.logsumexp = function (a, k) { return logsumexp(this, a, k); };
P.cumsum = function (a) { return cumsum(this, a); };
P.norm = function (p, a, k) { return norm(this, p, a, k); };
