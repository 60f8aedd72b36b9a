// Learning-rate schedules (torch.optim.lr_scheduler): StepLR, MultiStepLR, ExponentialLR,
// CosineAnnealingLR, LambdaLR, LinearLR (linear warmup), OneCycleLR, and SequentialLR to chain them.
//
// Each schedule is a closed-form function of the step count, so a schedule restored from its state dict
// continues exactly (no accumulated floating-point drift to reproduce). Construction applies step 0,
// as PyTorch's does; call step() after each optimizer.step().
import { check, TesseraError } from '../core/errors.js';

/** The part of an optimizer a scheduler drives. */
export interface SchedulableOptimizer {
  paramGroups: Array<{ lr: number; initialLr?: number; momentum?: number; betas?: [number, number] }>;
}

export interface SchedulerStateDict {
  lastEpoch: number;
  baseLrs: number[];
  [key: string]: number | number[] | boolean | string;
}

export abstract class LRScheduler {
  /** Steps taken (0 right after construction). */
  lastEpoch = 0;
  readonly baseLrs: number[];
  #lastLr: number[] = [];

  constructor(readonly optimizer: SchedulableOptimizer) {
    for (const g of optimizer.paramGroups) g.initialLr ??= g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
  }

  /** The learning rate of each group at step `epoch`. */
  protected abstract lrAt(epoch: number): number[];

  /** Applies the schedule of the current step (called by subclasses at the end of their constructors). */
  protected apply(): void {
    const lrs = this.lrAt(this.lastEpoch);
    this.optimizer.paramGroups.forEach((g, i) => { g.lr = lrs[i]!; });
    this.#lastLr = lrs;
  }

  step(): void {
    this.lastEpoch++;
    this.apply();
  }

  /** The learning rates the last step set. */
  getLastLr(): number[] {
    return [...this.#lastLr];
  }

  stateDict(): SchedulerStateDict {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs] };
  }

  loadStateDict(sd: SchedulerStateDict): void {
    check(sd.baseLrs.length === this.baseLrs.length, `${this.constructor.name}.loadStateDict`, () =>
      `the saved schedule drives ${sd.baseLrs.length} parameter groups but this optimizer has ${this.baseLrs.length}.`);
    this.baseLrs.splice(0, this.baseLrs.length, ...sd.baseLrs);
    this.lastEpoch = sd.lastEpoch;
    this.apply();
  }
}

/** lr = base * gamma^floor(step / stepSize). */
export class StepLR extends LRScheduler {
  constructor(optimizer: SchedulableOptimizer, readonly stepSize: number, readonly gamma = 0.1) {
    super(optimizer);
    check(Number.isInteger(stepSize) && stepSize > 0, 'StepLR', () => `stepSize must be a positive integer, got ${stepSize}.`);
    this.apply();
  }
  protected lrAt(e: number): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(e / this.stepSize));
  }
}

/** lr = base * gamma^(number of milestones reached). */
export class MultiStepLR extends LRScheduler {
  constructor(optimizer: SchedulableOptimizer, readonly milestones: readonly number[], readonly gamma = 0.1) {
    super(optimizer);
    this.apply();
  }
  protected lrAt(e: number): number[] {
    const k = this.milestones.filter((m) => m <= e).length;
    return this.baseLrs.map((b) => b * this.gamma ** k);
  }
}

/** lr = base * gamma^step. */
export class ExponentialLR extends LRScheduler {
  constructor(optimizer: SchedulableOptimizer, readonly gamma: number) {
    super(optimizer);
    this.apply();
  }
  protected lrAt(e: number): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** e);
  }
}

/** lr = etaMin + (base - etaMin) * (1 + cos(pi * step / tMax)) / 2 (the closed form of PyTorch's schedule). */
export class CosineAnnealingLR extends LRScheduler {
  constructor(optimizer: SchedulableOptimizer, readonly tMax: number, readonly etaMin = 0) {
    super(optimizer);
    check(tMax > 0, 'CosineAnnealingLR', () => `tMax must be positive, got ${tMax}.`);
    this.apply();
  }
  protected lrAt(e: number): number[] {
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + Math.cos((Math.PI * e) / this.tMax))) / 2);
  }
}

/** lr = base * factor(step) for a function you give (one for all groups). */
export class LambdaLR extends LRScheduler {
  constructor(optimizer: SchedulableOptimizer, readonly factor: (step: number) => number) {
    super(optimizer);
    this.apply();
  }
  protected lrAt(e: number): number[] {
    const f = this.factor(e);
    return this.baseLrs.map((b) => b * f);
  }
}

/**
 * Linear change of the factor from startFactor to endFactor over totalIters steps, then constant
 * (PyTorch's LinearLR; with startFactor small and endFactor 1 it is a linear warmup).
 */
export class LinearLR extends LRScheduler {
  constructor(optimizer: SchedulableOptimizer, readonly startFactor = 1 / 3, readonly endFactor = 1, readonly totalIters = 5) {
    super(optimizer);
    check(startFactor > 0 && startFactor <= 1 && endFactor >= 0 && endFactor <= 1, 'LinearLR', () =>
      `startFactor must be in (0, 1] and endFactor in [0, 1], got ${startFactor} and ${endFactor}.`);
    this.apply();
  }
  protected lrAt(e: number): number[] {
    const f = this.startFactor + ((this.endFactor - this.startFactor) * Math.min(e, this.totalIters)) / this.totalIters;
    return this.baseLrs.map((b) => b * f);
  }
}

/** A linear warmup over `warmupSteps` followed by cosine decay to `minFactor` of the base at `totalSteps`. */
export function warmupCosine(warmupSteps: number, totalSteps: number, minFactor = 0): (step: number) => number {
  return (step) => {
    if (step < warmupSteps) return (step + 1) / warmupSteps;
    const t = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return minFactor + ((1 - minFactor) * (1 + Math.cos(Math.PI * t))) / 2;
  };
}

export interface OneCycleOptions {
  totalSteps: number;
  pctStart?: number;
  annealStrategy?: 'cos' | 'linear';
  divFactor?: number;
  finalDivFactor?: number;
  /** Cycle momentum (SGD's momentum or Adam's beta1) inversely to the learning rate (default true). */
  cycleMomentum?: boolean;
  baseMomentum?: number;
  maxMomentum?: number;
  threePhase?: boolean;
}

/** Progress through a phase; a phase of zero length (very short runs) counts as done, where PyTorch gives NaN. */
function phasePct(e: number, start: number, end: number): number {
  return end - start > 0 ? (e - start) / (end - start) : 1;
}

/** The 1cycle policy (PyTorch's OneCycleLR): warm up to maxLr, then anneal far below the start. */
export class OneCycleLR extends LRScheduler {
  readonly #o: Required<OneCycleOptions>;
  readonly #maxLrs: number[];

  constructor(optimizer: SchedulableOptimizer, maxLr: number | number[], options: OneCycleOptions) {
    super(optimizer);
    this.#o = { pctStart: 0.3, annealStrategy: 'cos', divFactor: 25, finalDivFactor: 1e4, cycleMomentum: true, baseMomentum: 0.85, maxMomentum: 0.95, threePhase: false, ...options };
    check(Number.isInteger(this.#o.totalSteps) && this.#o.totalSteps > 0, 'OneCycleLR', () => `totalSteps must be a positive integer, got ${this.#o.totalSteps}.`);
    check(this.#o.pctStart >= 0 && this.#o.pctStart <= 1, 'OneCycleLR', () => `pctStart must be in [0, 1], got ${this.#o.pctStart}.`);
    const groups = optimizer.paramGroups;
    this.#maxLrs = typeof maxLr === 'number' ? groups.map(() => maxLr) : [...maxLr];
    check(this.#maxLrs.length === groups.length, 'OneCycleLR', () => `got ${this.#maxLrs.length} maxLr values for ${groups.length} parameter groups.`);
    // PyTorch overwrites initial_lr with maxLr / divFactor.
    groups.forEach((g, i) => { g.initialLr = this.#maxLrs[i]! / this.#o.divFactor; });
    this.baseLrs.splice(0, this.baseLrs.length, ...groups.map((g) => g.initialLr!));
    if (this.#o.cycleMomentum) {
      for (const g of groups) {
        if (g.momentum === undefined && g.betas === undefined) {
          throw new TesseraError('OneCycleLR: cycleMomentum needs an optimizer with momentum (SGD) or betas (Adam); pass cycleMomentum: false.');
        }
      }
    }
    this.apply();
  }

  #phases(): Array<{ end: number; lr: [string, string]; m: [string, string] }> {
    const { totalSteps: T, pctStart: p, threePhase } = this.#o;
    if (threePhase) {
      return [
        { end: p * T - 1, lr: ['initial', 'max'], m: ['max', 'base'] },
        { end: 2 * p * T - 2, lr: ['max', 'initial'], m: ['base', 'max'] },
        { end: T - 1, lr: ['initial', 'min'], m: ['max', 'max'] },
      ];
    }
    return [
      { end: p * T - 1, lr: ['initial', 'max'], m: ['max', 'base'] },
      { end: T - 1, lr: ['max', 'min'], m: ['base', 'max'] },
    ];
  }

  #anneal(start: number, end: number, pct: number): number {
    return this.#o.annealStrategy === 'cos' ? end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1) : (end - start) * pct + start;
  }

  /** The momentum of the current step (undefined when momentum is not cycled). */
  #momentumAt(e: number): number | undefined {
    if (!this.#o.cycleMomentum) return undefined;
    const values: Record<string, number> = { base: this.#o.baseMomentum, max: this.#o.maxMomentum };
    const phases = this.#phases();
    let start = 0;
    for (let i = 0; i < phases.length; i++) {
      const ph = phases[i]!;
      if (e <= ph.end || i === phases.length - 1) return this.#anneal(values[ph.m[0]]!, values[ph.m[1]]!, phasePct(e, start, ph.end));
      start = ph.end;
    }
    return undefined;
  }

  protected lrAt(e: number): number[] {
    check(e <= this.#o.totalSteps, 'OneCycleLR', () => `stepped ${e} times but totalSteps is ${this.#o.totalSteps}; give a larger totalSteps.`);
    const phases = this.#phases();
    return this.baseLrs.map((initial, gi) => {
      const values: Record<string, number> = { initial, max: this.#maxLrs[gi]!, min: initial / this.#o.finalDivFactor };
      let start = 0;
      for (let i = 0; i < phases.length; i++) {
        const ph = phases[i]!;
        if (e <= ph.end || i === phases.length - 1) return this.#anneal(values[ph.lr[0]]!, values[ph.lr[1]]!, phasePct(e, start, ph.end));
        start = ph.end;
      }
      return initial;
    });
  }

  protected override apply(): void {
    super.apply();
    const m = this.#momentumAt(this.lastEpoch);
    if (m === undefined) return;
    for (const g of this.optimizer.paramGroups) {
      if (g.betas !== undefined) g.betas = [m, g.betas[1]];
      else g.momentum = m;
    }
  }
}

/** Runs schedulers one after another: the i-th from milestones[i-1] on, counting its own steps from 0. */
export class SequentialLR extends LRScheduler {
  constructor(optimizer: SchedulableOptimizer, readonly schedulers: LRScheduler[], readonly milestones: number[]) {
    super(optimizer);
    check(milestones.length === schedulers.length - 1, 'SequentialLR', () =>
      `needs one milestone fewer than schedulers, got ${milestones.length} milestones for ${schedulers.length} schedulers.`);
    this.apply();
  }
  protected lrAt(e: number): number[] {
    let i = 0;
    while (i < this.milestones.length && e >= this.milestones[i]!) i++;
    const start = i === 0 ? 0 : this.milestones[i - 1]!;
    const s = this.schedulers[i]!;
    s.lastEpoch = e - start;
    return (s as unknown as { lrAt(e: number): number[] }).lrAt(e - start);
  }
}
