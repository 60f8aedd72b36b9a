// One training step as a function of (x, y): zeroGrad, loss, backward, optimizer step; returns
// the loss. Shared by the tests that run it eagerly and under jit.
import type * as t from '../../src/index.js';
import type { BaseOptions, Optimizer } from '../../src/optim/index.js';

export function trainStepBody(opt: Optimizer<BaseOptions>, loss: (x: t.Tensor, y: t.Tensor) => t.Tensor): (x: t.Tensor, y: t.Tensor) => t.Tensor {
  return (a, b) => {
    opt.zeroGrad();
    const l = loss(a, b);
    l.backward();
    opt.step();
    return l;
  };
}
