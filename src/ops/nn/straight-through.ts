// Values whose gradient is not the derivative of the value, for composites that must match a
// PyTorch op whose backward is written by hand (or that clamps under no_grad). Both are built from
// ordinary ops and `detach`, so they differentiate in reverse and forward mode like any composite.
import type { Tensor } from '../../core/tensor.js';
import { add, lt, sub, where } from '../elementwise.js';
import { detach } from '../shape.js';

/**
 * The values of `value` with the derivative of `surrogate`: detach(value) + (surrogate −
 * detach(surrogate)). The second term is exactly 0 for finite surrogates, so keep them finite
 * wherever the result is used (e.g. on the safe side of a `where`).
 */
export function withGradientOf(value: Tensor, surrogate: Tensor): Tensor {
  return add(detach(value), sub(surrogate, detach(surrogate)));
}

/**
 * max(x, min) whose gradient is 1 everywhere, as PyTorch's `x.clamp_(min=eps)` under no_grad (used
 * by gaussian_nll_loss for the variance and by cosine_similarity for the squared norms): where x is
 * below `min` the value is exactly `min` and the gradient still flows to x.
 */
export function clampMinKeepingGradient(x: Tensor, min: number): Tensor {
  return where(lt(x, min), add(sub(x, detach(x)), min), x);
}
