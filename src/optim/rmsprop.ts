// RMSprop (torch.optim.RMSprop's update: centered variant, momentum, weight decay).
import { check } from '../core/errors.js';
import { Optimizer, type BaseOptions, type ParamsArg, type UpdateContext } from './optimizer.js';
import type { OptimizerRule } from '../backend/backend.js';

export interface RmspropOptions extends BaseOptions {
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  centered: boolean;
  maximize: boolean;
}

export class RMSprop extends Optimizer<RmspropOptions> {
  constructor(params: ParamsArg<RmspropOptions>, options: Partial<RmspropOptions> = {}) {
    super(params, { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false, maximize: false, ...options });
  }

  protected override validateOptions(g: RmspropOptions): void {
    super.validateOptions(g);
    check(g.alpha >= 0 && g.eps >= 0 && g.momentum >= 0 && g.weightDecay >= 0, 'RMSprop', () =>
      `alpha ${g.alpha}, eps ${g.eps}, momentum ${g.momentum} and weightDecay ${g.weightDecay} must be non-negative.`);
  }

  protected stateNames(g: RmspropOptions): string[] {
    return ['squareAvg', ...(g.momentum > 0 ? ['momentumBuffer'] : []), ...(g.centered ? ['gradAvg'] : [])];
  }

  protected override fusedRule(g: RmspropOptions, counters: Record<string, number>): OptimizerRule {
    counters.step = (counters.step ?? 0) + 1;
    return {
      kind: 'rmsprop', lr: g.lr, alpha: g.alpha, eps: g.eps, weightDecay: g.weightDecay,
      momentum: g.momentum, centered: g.centered, maximize: g.maximize,
    };
  }

  protected update({ group: g, param, grad, state, counters }: UpdateContext<RmspropOptions>): void {
    counters.step = (counters.step ?? 0) + 1;
    const sq = state.squareAvg!, buf = state.momentumBuffer, ga = state.gradAvg;
    for (let i = 0; i < param.length; i++) {
      let gi = g.maximize ? -grad[i]! : grad[i]!;
      gi += g.weightDecay * param[i]!;
      sq[i] = sq[i]! * g.alpha + (1 - g.alpha) * gi * gi;
      let avg: number;
      if (ga !== undefined) {
        ga[i] = ga[i]! + (gi - ga[i]!) * (1 - g.alpha);
        avg = Math.sqrt(sq[i]! - ga[i]! * ga[i]!) + g.eps;
      } else {
        avg = Math.sqrt(sq[i]!) + g.eps;
      }
      if (buf !== undefined) {
        buf[i] = buf[i]! * g.momentum + gi / avg;
        param[i] = param[i]! - g.lr * buf[i]!;
      } else {
        param[i] = param[i]! - g.lr * (gi / avg);
      }
    }
  }
}
