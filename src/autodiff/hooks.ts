// Gradient hooks (Tensor.registerHook) as backward passes run them, and the shape check every
// gradient a vjp rule or a hook hands back must pass. Shared by backward.ts, split-backward.ts
// and the cotangent ownership (cotangent-owner.ts).
import { Tensor } from '../core/tensor.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';

export function checkGradShape(t: Tensor, g: Tensor, what: string): void {
  if (!shapesEqual(t.shape, g.shape)) {
    throw new TesseraError(`backward: ${what} has shape ${fmtShape(g.shape)} but the tensor has shape ${fmtShape(t.shape)}.`);
  }
}

/** Runs t's hooks in order on its gradient; a hook may return a replacement of the same shape. */
export function runHooks(t: Tensor, g: Tensor): Tensor {
  let out = g;
  for (const h of t.hooks) {
    const r = h(out);
    if (r instanceof Tensor) {
      checkGradShape(t, r, 'a hook returned a gradient that');
      out = r;
    }
  }
  return out;
}
