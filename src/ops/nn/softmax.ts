// softmax and logSoftmax along one axis, each one primitive, computed stably by subtracting the row
// maximum (0 where it is ±inf). Their derivative rules are written from the output (the result is
// invariant to the shift, so no gradient flows through the max).
import { defaultFloatDType, isFloating, type DType } from '../../core/dtype.js';
import { Tensor } from '../../core/tensor.js';
import { normalizeAxis } from '../../core/shape.js';
import { cast } from '../elementwise.js';
import { bind } from '../dispatch.js';
import { reshape } from '../shape.js';

export interface SoftmaxOptions {
  /** Compute in this (floating) dtype; the input is cast first (like PyTorch's dtype argument). */
  dtype?: DType;
}

function floatInput(x: Tensor, opts: SoftmaxOptions): Tensor {
  return cast(x, opts.dtype ?? (isFloating(x.dtype) ? x.dtype : defaultFloatDType()));
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

/**
 * x − logsumexp(x) along `axis`, without forming softmax (stable for very negative
 * log-probabilities): one primitive, so a loss over logits is a single pass per row on fast
 * backends and its vjp g − exp(y)·Σg three ops, where the composite ran max, a NaN guard, sub,
 * exp, sum, log and sub (and their gradients) as separate kernels.
 */
export function logSoftmax(x: Tensor, axis: number, opts: SoftmaxOptions = {}): Tensor {
  const xf = floatInput(x, opts);
  if (xf.rank === 0) return reshape(logSoftmax(reshape(xf, [1]), 0), []);
  return bind('logSoftmax', [xf], { axis: normalizeAxis(axis, xf.rank, 'logSoftmax') });
}

declare module '../../core/tensor.js' {
  interface Tensor {
    softmax(axis: number, opts?: SoftmaxOptions): Tensor;
    logSoftmax(axis: number, opts?: SoftmaxOptions): Tensor;
  }
}

Tensor.prototype.softmax = function (axis, opts) { return softmax(this, axis, opts); };
Tensor.prototype.logSoftmax = function (axis, opts) { return logSoftmax(this, axis, opts); };
