// Adam and AdamW (torch.optim.Adam / AdamW's updates, with amsgrad), element by element.
import { check } from '../core/errors.js';
import { Optimizer, type BaseOptions, type ParamsArg, type UpdateContext } from './optimizer.js';
import type { OptimizerRule } from '../backend/backend.js';

export interface AdamOptions extends BaseOptions {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

/**
 * Adam. Weight decay here is L2 regularisation added to the gradient (as torch.optim.Adam); AdamW
 * decouples it.
 */
export class Adam extends Optimizer<AdamOptions> {
  protected readonly decoupled: boolean = false;
  protected override readonly updatesInPlace: boolean = true;

  constructor(params: ParamsArg<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, ...options });
  }

  protected override validateOptions(g: AdamOptions): void {
    super.validateOptions(g);
    const [b1, b2] = g.betas;
    check(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, this.constructor.name, () => `betas must lie in [0, 1), got [${b1}, ${b2}].`);
    check(g.eps >= 0 && g.weightDecay >= 0, this.constructor.name, () => `eps ${g.eps} and weightDecay ${g.weightDecay} must be non-negative.`);
  }

  protected stateNames(group: AdamOptions): string[] {
    return group.amsgrad ? ['expAvg', 'expAvgSq', 'maxExpAvgSq'] : ['expAvg', 'expAvgSq'];
  }

  /** The scalars of step `step` (counted from 1). */
  private stepScalars(g: AdamOptions, step: number): { stepSize: number; biasCorrection2Sqrt: number; decay: number } {
    const [b1, b2] = g.betas;
    return {
      stepSize: g.lr / (1 - b1 ** step),
      biasCorrection2Sqrt: Math.sqrt(1 - b2 ** step),
      decay: this.decoupled ? 1 - g.lr * g.weightDecay : 1,
    };
  }

  protected override fusedRule(g: AdamOptions, counters: Record<string, number>): OptimizerRule {
    const step = (counters.step ?? 0) + 1;
    counters.step = step;
    return {
      kind: 'adam', ...this.stepScalars(g, step), weightDecay: this.decoupled ? 0 : g.weightDecay,
      beta1: g.betas[0], beta2: g.betas[1], eps: g.eps, amsgrad: g.amsgrad, maximize: g.maximize,
    };
  }

  protected update({ group: g, param, grad, state, counters }: UpdateContext<AdamOptions>): void {
    const step = (counters.step ?? 0) + 1;
    counters.step = step;
    const [b1, b2] = g.betas;
    const m = state.expAvg!, v = state.expAvgSq!, vmax = state.maxExpAvgSq;
    const { stepSize, biasCorrection2Sqrt, decay } = this.stepScalars(g, step);
    const maximize = g.maximize, coupledDecay = !this.decoupled, weightDecay = g.weightDecay, eps = g.eps;
    // Each stored element is read once and written once; the arithmetic stays in float64 locals, so
    // running on the tensors' own float32 memory (updatesInPlace) equals running on float64 copies.
    for (let i = 0; i < param.length; i++) {
      let gi = maximize ? -grad[i]! : grad[i]!;
      let p = param[i]! * decay;
      if (coupledDecay) gi += weightDecay * p;
      const mi = m[i]! + (gi - m[i]!) * (1 - b1);
      const vi = v[i]! * b2 + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      let second = vi;
      if (vmax !== undefined) second = vmax[i] = Math.max(vmax[i]!, vi);
      const denom = Math.sqrt(second) / biasCorrection2Sqrt + eps;
      p -= stepSize * (mi / denom);
      param[i] = p;
    }
  }
}

/** AdamW: Adam with decoupled weight decay (parameters shrink by lr * weightDecay each step). */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  constructor(params: ParamsArg<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super(params, { weightDecay: 1e-2, ...options });
  }
}
