// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).
import { check } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { keep, scope } from '../core/memory.js';
import { abs, add, cast, clamp, div, mul, pow, sqrt } from '../ops/elementwise.js';
import { max, sum } from '../ops/reduce.js';
import { stack } from '../ops/combine.js';
import { zeros } from '../ops/creation.js';
import { innermostDispatchObserver } from '../ops/dispatch.js';

// Clipping reads gradients and replaces them without marking them seen, so the gradients it
// replaces go at once (see Tensor._replaceGrad); outside a trace, whose graph keeps its tensors.
// The new gradients are kept out of memory scopes, as backward's are: they outlive the step.
const disposeReplaced = (): boolean => innermostDispatchObserver() === undefined;

export interface ClipGradNormOptions {
  /**
   * Return the norm as a 0-d tensor and scale the gradients by min(1, maxNorm / (norm + 1e-6))
   * as a tensor too, without reading any value (torch.nn.utils.clip_grad_norm_'s behaviour). Use
   * it inside `t.jit`: reading the norm would be a guard that fails whenever the norm changes,
   * so the step would be traced again on every call.
   */
  asTensor?: boolean;
}

/**
 * Scales all gradients together so that their joint norm is at most maxNorm; returns the norm
 * before clipping (a number, or with `{ asTensor: true }` a 0-d tensor). normType may be any
 * p >= 1 or Infinity. The norm is computed with tensor ops on the gradients' backend (float64
 * when a gradient is float64, else float32).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType?: number): number;
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType: number, options: ClipGradNormOptions & { asTensor: true }): Tensor;
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2, options: ClipGradNormOptions = {}): number | Tensor {
  check(maxNorm >= 0, 'clipGradNorm', () => `maxNorm must be non-negative, got ${maxNorm}.`);
  check(normType >= 1, 'clipGradNorm', () => `normType must be >= 1 (or Infinity), got ${normType}.`);
  const withGrad = [...params].filter((p) => p._peekGrad() !== undefined);
  const grads = withGrad.map((p) => p._peekGrad()!);
  const dtype = grads.some((g) => g.dtype === 'float64') ? 'float64' : 'float32';
  return noGrad(() => {
    const total = scope(() => {
      if (grads.length === 0) return zeros([], { dtype });
      // Per gradient: max |g| or Σ |g|^p, then combined.
      const parts = grads.map((g) => cast(normType === Infinity ? max(abs(g)) : normType === 2 ? sum(mul(g, g)) : sum(pow(abs(g), normType)), dtype));
      const all = stack(parts);
      return normType === Infinity ? max(all) : normType === 2 ? sqrt(sum(all)) : pow(sum(all), 1 / normType);
    });
    if (options.asTensor === true) {
      // Always multiplied (by exactly 1 below the limit), so nothing depends on a value read.
      scope(() => {
        const coef = clamp(div(maxNorm, add(total, 1e-6)), undefined, 1);
        for (const p of withGrad) p._replaceGrad(keep(mul(p._peekGrad()!, cast(coef, p._peekGrad()!.dtype))), disposeReplaced());
      });
      return total;
    }
    const norm = total.item();
    total.dispose();
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) for (const p of withGrad) p._replaceGrad(keep(mul(p._peekGrad()!, coef)), disposeReplaced());
    return norm;
  });
}

/** Clamps every gradient element into [-clipValue, clipValue]. */
export function clipGradValue(params: Iterable<Tensor>, clipValue: number): void {
  check(clipValue >= 0, 'clipGradValue', () => `clipValue must be non-negative, got ${clipValue}.`);
  noGrad(() => {
    for (const p of params) {
      const g = p._peekGrad();
      if (g !== undefined) p._replaceGrad(keep(clamp(g, -clipValue, clipValue)), disposeReplaced());
    }
  });
}
