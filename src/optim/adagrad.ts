// Adagrad (torch.optim.Adagrad's update with learning-rate decay and weight decay).
import { check } from '../core/errors.js';
import { Optimizer, type BaseOptions, type ParamsArg, type UpdateContext } from './optimizer.js';
import type { OptimizerRule } from '../backend/backend.js';

export interface AdagradOptions extends BaseOptions {
  lrDecay: number;
  weightDecay: number;
  initialAccumulatorValue: number;
  eps: number;
  maximize: boolean;
}

export class Adagrad extends Optimizer<AdagradOptions> {
  constructor(params: ParamsArg<AdagradOptions>, options: Partial<AdagradOptions> = {}) {
    super(params, { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10, maximize: false, ...options });
  }

  protected override validateOptions(g: AdagradOptions): void {
    super.validateOptions(g);
    check(g.lrDecay >= 0 && g.weightDecay >= 0 && g.initialAccumulatorValue >= 0 && g.eps >= 0, 'Adagrad', () =>
      `lrDecay ${g.lrDecay}, weightDecay ${g.weightDecay}, initialAccumulatorValue ${g.initialAccumulatorValue} and eps ${g.eps} must be non-negative.`);
  }

  protected stateNames(): string[] {
    return ['sum'];
  }

  protected override initialState(_name: string, g: AdagradOptions): number {
    return g.initialAccumulatorValue;
  }

  protected override fusedRule(g: AdagradOptions, counters: Record<string, number>): OptimizerRule {
    const step = (counters.step ?? 0) + 1;
    counters.step = step;
    return { kind: 'adagrad', lr: decayedLr(g, step), weightDecay: g.weightDecay, eps: g.eps, maximize: g.maximize };
  }

  protected update({ group: g, param, grad, state, counters }: UpdateContext<AdagradOptions>): void {
    const step = (counters.step ?? 0) + 1;
    counters.step = step;
    const clr = decayedLr(g, step);
    const acc = state.sum!;
    for (let i = 0; i < param.length; i++) {
      let gi = g.maximize ? -grad[i]! : grad[i]!;
      gi += g.weightDecay * param[i]!;
      acc[i] = acc[i]! + gi * gi;
      param[i] = param[i]! - clr * (gi / (Math.sqrt(acc[i]!) + g.eps));
    }
  }
}

/** The learning rate of step `step` (counted from 1) after lrDecay. */
function decayedLr(g: AdagradOptions, step: number): number {
  return g.lr / (1 + (step - 1) * g.lrDecay);
}
