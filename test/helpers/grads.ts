// Gradients of a loss with respect to some tensors, taken fresh (their .grad cleared first) and
// copied out, so that two ways of computing the same loss can be compared.
import type { Tensor } from '../../src/index.js';

export function gradsOf(wrt: readonly Tensor[], loss: () => Tensor): Tensor[] {
  for (const w of wrt) w.grad = undefined;
  loss().backward();
  return wrt.map((w) => w.grad!.clone());
}
