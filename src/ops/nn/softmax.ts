// softmax (a primitive) and logSoftmax (a composite) along one axis, computed stably by subtracting
// the row maximum. In logSoftmax the max is detached: the result is invariant to the shift, so its
// gradient through the max is exactly zero and dropping it avoids the tie-splitting `max` rule in
// the graph (and in higher derivatives).
import { defaultFloatDType, isFloating, type DType } from '../../core/dtype.js';
import { Tensor } from '../../core/tensor.js';
import { normalizeAxis } from '../../core/shape.js';
import { cast, exp, log, sub, where, isnan } from '../elementwise.js';
import { bind } from '../dispatch.js';
import { max, sum } from '../reduce.js';
import { reshape } from '../shape.js';

export interface SoftmaxOptions {
  /** Compute in this (floating) dtype; the input is cast first (like PyTorch's dtype argument). */
  dtype?: DType;
}

function floatInput(x: Tensor, opts: SoftmaxOptions): Tensor {
  return cast(x, opts.dtype ?? (isFloating(x.dtype) ? x.dtype : defaultFloatDType()));
}

/** x − max(x) along `axis` with the max detached; an infinite max shifts by 0 so no inf − inf appears. */
function shifted(x: Tensor, axis: number): Tensor {
  const m = max(x, axis, true).detach();
  return sub(x, where(isnan(sub(m, m)), 0, m));
}

/**
 * exp(x) / sum(exp(x)) along `axis`: one primitive (a single pass per row on fast backends; its
 * vjp y·(g − Σ g·y) is four ops instead of the composite's chain through max, sub, exp and div).
 */
export function softmax(x: Tensor, axis: number, opts: SoftmaxOptions = {}): Tensor {
  const xf = floatInput(x, opts);
  if (xf.rank === 0) return reshape(softmax(reshape(xf, [1]), 0), []);
  return bind('softmax', [xf], { axis: normalizeAxis(axis, xf.rank, 'softmax') });
}

/** x − logsumexp(x) along `axis`, without forming softmax (stable for very negative log-probabilities). */
export function logSoftmax(x: Tensor, axis: number, opts: SoftmaxOptions = {}): Tensor {
  const xf = floatInput(x, opts);
  if (xf.rank === 0) return reshape(logSoftmax(reshape(xf, [1]), 0), []);
  const a = normalizeAxis(axis, xf.rank, 'logSoftmax');
  const z = shifted(xf, a);
  return sub(z, log(sum(exp(z), a, true)));
}

declare module '../../core/tensor.js' {
  interface Tensor {
    softmax(axis: number, opts?: SoftmaxOptions): Tensor;
    logSoftmax(axis: number, opts?: SoftmaxOptions): Tensor;
  }
}

Tensor.prototype.softmax = function (axis, opts) { return softmax(this, axis, opts); };
Tensor.prototype.logSoftmax = function (axis, opts) { return logSoftmax(this, axis, opts); };
