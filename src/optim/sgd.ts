// Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay
// (torch.optim.SGD's update, element by element).
import { check } from '../core/errors.js';
import { Optimizer, type BaseOptions, type ParamsArg, type ParamState, type UpdateContext } from './optimizer.js';
import type { Tensor } from '../core/tensor.js';
import type { OptimizerRule } from '../backend/backend.js';

export interface SgdOptions extends BaseOptions {
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export class SGD extends Optimizer<SgdOptions> {
  constructor(params: ParamsArg<SgdOptions>, options: Partial<SgdOptions> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...options });
  }

  protected override validateOptions(g: SgdOptions): void {
    super.validateOptions(g);
    check(g.momentum >= 0 && g.weightDecay >= 0, 'SGD', () => `momentum ${g.momentum} and weightDecay ${g.weightDecay} must be non-negative.`);
    check(!g.nesterov || (g.momentum > 0 && g.dampening === 0), 'SGD', () =>
      `Nesterov momentum needs momentum > 0 and dampening 0, got momentum ${g.momentum}, dampening ${g.dampening}.`);
  }

  protected stateNames(): string[] {
    return [];
  }

  protected override fusedRule(g: SgdOptions, _counters: Record<string, number>, state: ParamState, p: Tensor): OptimizerRule {
    // As in update(): the buffer is created on the first step and starts as that step's direction.
    const firstStep = g.momentum !== 0 && state.momentumBuffer === undefined;
    if (firstStep) state.momentumBuffer = this.createState(p, 0);
    return {
      kind: 'sgd', lr: g.lr, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay,
      nesterov: g.nesterov, maximize: g.maximize, firstStep,
    };
  }

  protected update({ group: g, param, grad, state, counters }: UpdateContext<SgdOptions>): void {
    const n = param.length;
    const d = new Float64Array(n);
    for (let i = 0; i < n; i++) d[i] = (g.maximize ? -grad[i]! : grad[i]!) + g.weightDecay * param[i]!;
    if (g.momentum !== 0) {
      // The buffer starts as a copy of the first step's direction (no dampening on that step).
      let buf = state.momentumBuffer;
      if (buf === undefined) {
        buf = state.momentumBuffer = Float64Array.from(d);
      } else {
        for (let i = 0; i < n; i++) buf[i] = buf[i]! * g.momentum + (1 - g.dampening) * d[i]!;
      }
      for (let i = 0; i < n; i++) d[i] = g.nesterov ? d[i]! + g.momentum * buf[i]! : buf[i]!;
    }
    for (let i = 0; i < n; i++) param[i] = param[i]! - g.lr * d[i]!;
    void counters;
  }
}
