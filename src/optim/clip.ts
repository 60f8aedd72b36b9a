// Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).
import { check } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { keep } from '../core/memory.js';
import { clamp, mul } from '../ops/elementwise.js';
import { innermostDispatchObserver } from '../ops/dispatch.js';

// Clipping reads gradients and replaces them without marking them seen, so the gradients it
// replaces go at once (see Tensor._replaceGrad); outside a trace, whose graph keeps its tensors.
// The new gradients are kept out of memory scopes, as backward's are: they outlive the step.
const disposeReplaced = (): boolean => innermostDispatchObserver() === undefined;

/**
 * Scales all gradients together so that their joint norm is at most maxNorm; returns the norm
 * before clipping. normType may be any p >= 1 or Infinity.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2): number {
  check(maxNorm >= 0, 'clipGradNorm', () => `maxNorm must be non-negative, got ${maxNorm}.`);
  check(normType >= 1, 'clipGradNorm', () => `normType must be >= 1 (or Infinity), got ${normType}.`);
  const withGrad = [...params].filter((p) => p._peekGrad() !== undefined);
  let total = 0;
  for (const p of withGrad) {
    const g = p._peekGrad()!.data();
    if (normType === Infinity) for (let i = 0; i < g.length; i++) total = Math.max(total, Math.abs(g[i]!));
    else for (let i = 0; i < g.length; i++) total += Math.abs(g[i]!) ** normType;
  }
  if (normType !== Infinity) total = total ** (1 / normType);
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) noGrad(() => { for (const p of withGrad) p._replaceGrad(keep(mul(p._peekGrad()!, coef)), disposeReplaced()); });
  return total;
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
