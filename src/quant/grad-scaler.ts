// GradScaler: dynamic loss scaling for float16 training, with torch.amp.GradScaler's semantics.
//
// float16 has 5 exponent bits: gradients below 2^-24 flush to zero. Multiplying the loss by a large
// scale S before backward() multiplies every gradient by S and lifts small ones into range;
// unscale_() divides them again (in the gradients' own dtype, float32 for float32 parameters) before
// the optimizer uses them. A scale too large overflows: some gradient becomes inf or NaN, step()
// then skips the update and update() halves S (backoffFactor); after growthInterval steps without
// overflow update() doubles S (growthFactor). bfloat16 has float32's exponent range and needs no
// scaling: construct the scaler with enabled: false (it then passes straight through).
//
// The order per iteration, as in PyTorch:
//   scaler.scale(loss).backward(); [scaler.unscale_(opt); clipGradNorm(...)]; scaler.step(opt); scaler.update();
//
// The overflow check is one fused reduction per gradient: sum(g · 0) is 0 for finite g and NaN as
// soon as one element is inf or NaN (inf · 0 = NaN), and the per-gradient sums are added on the
// backend, so a step reads one number back, however many parameters there are.
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { add, mul } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { copy_ } from '../ops/inplace.js';
import { keep } from '../core/memory.js';

export interface GradScalerOptions {
  /** Initial scale (default 2^16). */
  initScale?: number;
  /** Multiplies the scale after growthInterval steps without inf/NaN gradients (default 2, must be > 1). */
  growthFactor?: number;
  /** Multiplies the scale after a step with inf/NaN gradients (default 0.5, must be < 1). */
  backoffFactor?: number;
  /** Consecutive good steps before the scale grows (default 2000). */
  growthInterval?: number;
  /** false: scale() returns its input, step() just steps, update() does nothing (bfloat16, float32). Default true. */
  enabled?: boolean;
}

/** What the scaler needs of an optimizer (an optim.Optimizer, or a MasterWeightOptimizer). */
export interface ScalableOptimizer {
  readonly paramGroups: readonly { readonly params: readonly Tensor[] }[];
  step(): unknown;
  /** Called before the gradients are read (MasterWeightOptimizer copies the model's gradients to its float32 masters). */
  prepareGrads?(): void;
}

/** A scaler's state for a checkpoint (PyTorch's snake_case keys are accepted by loadStateDict too). */
export interface GradScalerState {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  growthTracker: number;
}

type Stage = 'ready' | 'unscaled' | 'stepped';
interface PerOptimizer {
  stage: Stage;
  /** 1 when a gradient was inf/NaN at unscale_, 0 when all were finite; undefined when there were no gradients. */
  foundInf: number | undefined;
}

export class GradScaler {
  #enabled: boolean;
  #scale: number;
  #growthFactor: number;
  #backoffFactor: number;
  #growthInterval: number;
  #growthTracker = 0;
  #scaled = false;
  #skipped = 0;
  #perOptimizer = new Map<ScalableOptimizer, PerOptimizer>();

  constructor(opts: GradScalerOptions = {}) {
    this.#enabled = opts.enabled ?? true;
    this.#scale = Math.fround(opts.initScale ?? 2 ** 16);
    this.#growthFactor = opts.growthFactor ?? 2;
    this.#backoffFactor = opts.backoffFactor ?? 0.5;
    this.#growthInterval = opts.growthInterval ?? 2000;
    if (this.#enabled) {
      check(this.#growthFactor > 1, `growthFactor must be > 1, got ${this.#growthFactor}.`);
      check(this.#backoffFactor < 1 && this.#backoffFactor > 0, `backoffFactor must be in (0, 1), got ${this.#backoffFactor}.`);
      check(Number.isInteger(this.#growthInterval) && this.#growthInterval >= 1, `growthInterval must be a positive integer, got ${this.#growthInterval}.`);
      check(Number.isFinite(this.#scale) && this.#scale > 0, `initScale must be a positive finite number, got ${opts.initScale}.`);
    }
  }

  isEnabled(): boolean {
    return this.#enabled;
  }

  /** The current scale (1 when disabled, like PyTorch's get_scale). */
  getScale(): number {
    return this.#enabled ? this.#scale : 1;
  }
  getGrowthFactor(): number { return this.#growthFactor; }
  setGrowthFactor(f: number): void { this.#growthFactor = f; }
  getBackoffFactor(): number { return this.#backoffFactor; }
  setBackoffFactor(f: number): void { this.#backoffFactor = f; }
  getGrowthInterval(): number { return this.#growthInterval; }
  setGrowthInterval(n: number): void { this.#growthInterval = n; }
  /** Good steps since the scale last changed. */
  getGrowthTracker(): number { return this.#growthTracker; }
  /** Steps step() skipped because of inf/NaN gradients since the scaler was made. */
  get skippedSteps(): number { return this.#skipped; }

  /** The loss (or losses) times the scale, for backward(). Disabled: the input itself. */
  scale(loss: Tensor): Tensor;
  scale(losses: readonly Tensor[]): Tensor[];
  scale(loss: Tensor | readonly Tensor[]): Tensor | Tensor[] {
    if (!this.#enabled) return Array.isArray(loss) ? [...loss] : (loss as Tensor);
    this.#scaled = true;
    return Array.isArray(loss) ? loss.map((l) => mul(l, this.#scale)) : mul(loss as Tensor, this.#scale);
  }

  private stateOf(optimizer: ScalableOptimizer): PerOptimizer {
    let s = this.#perOptimizer.get(optimizer);
    if (s === undefined) this.#perOptimizer.set(optimizer, (s = { stage: 'ready', foundInf: undefined }));
    return s;
  }

  /**
   * Divides the optimizer's gradients by the scale, in place, and records whether any was inf/NaN.
   * Call it before clipping or inspecting gradients; step() calls it when you did not.
   */
  unscale_(optimizer: ScalableOptimizer): void {
    if (!this.#enabled) return;
    if (!this.#scaled) throw new TesseraError('GradScaler.unscale_: scale() was never called; scale the loss (scaler.scale(loss).backward()) first.');
    const st = this.stateOf(optimizer);
    if (st.stage === 'unscaled') throw new TesseraError('GradScaler.unscale_: already called on this optimizer since the last update().');
    if (st.stage === 'stepped') throw new TesseraError('GradScaler.unscale_: called after step(); call it before step(), then update().');
    optimizer.prepareGrads?.();
    const params: Tensor[] = [];
    for (const g of optimizer.paramGroups) for (const p of g.params) if (p.grad !== undefined) params.push(p);
    for (const p of params) {
      if (p.grad!.dtype === 'float16') {
        throw new TesseraError('GradScaler.unscale_: attempting to unscale float16 gradients (they would underflow once divided by the scale). ' +
          'Keep the parameters in float32 and run the forward under autocast, or wrap the optimizer in quant.MasterWeightOptimizer.');
      }
    }
    // float32 reciprocal of the float32 scale, as PyTorch computes inv_scale.
    const inv = Math.fround(1 / this.#scale);
    st.foundInf = params.length === 0 ? undefined : noGrad(() => {
      let check: Tensor | undefined;
      for (const p of params) {
        const g = p.grad!;
        const s = sum(mul(g, 0));
        check = check === undefined ? s : add(check, s);
        const unscaled = mul(g, inv);
        // In place, like PyTorch, unless the gradient is a broadcast view (several elements, one memory).
        if (g.strides.every((stride, i) => stride !== 0 || g.shape[i]! <= 1)) copy_(g, unscaled);
        else p.grad = keep(unscaled);
      }
      return Number.isFinite(check!.item()) ? 0 : 1;
    });
    st.stage = 'unscaled';
  }

  /**
   * Unscales the gradients (unless unscale_ did already) and steps the optimizer if they are all
   * finite; otherwise skips the step. Returns what optimizer.step() returned, or undefined when skipped.
   */
  step<O extends ScalableOptimizer>(optimizer: O): ReturnType<O['step']> | undefined {
    if (!this.#enabled) return optimizer.step() as ReturnType<O['step']>;
    const st = this.stateOf(optimizer);
    if (st.stage === 'stepped') throw new TesseraError('GradScaler.step: already called on this optimizer since the last update().');
    if (st.stage === 'ready') this.unscale_(optimizer);
    if (st.foundInf === undefined) throw new TesseraError('GradScaler.step: no inf checks were recorded for this optimizer (none of its parameters has a gradient).');
    let result: ReturnType<O['step']> | undefined;
    if (st.foundInf === 0) result = optimizer.step() as ReturnType<O['step']>;
    else this.#skipped++;
    st.stage = 'stepped';
    return result;
  }

  /**
   * Updates the scale for the next iteration: backoff if any optimizer stepped over inf/NaN
   * gradients this iteration, growth after growthInterval clean ones; or sets it to `newScale`.
   */
  update(newScale?: number): void {
    if (!this.#enabled) return;
    if (newScale !== undefined) {
      check(Number.isFinite(newScale) && newScale > 0, `update: newScale must be a positive finite number, got ${newScale}.`);
      this.#scale = Math.fround(newScale);
    } else {
      const found = [...this.#perOptimizer.values()].map((s) => s.foundInf).filter((f): f is number => f !== undefined);
      if (found.length === 0) throw new TesseraError('GradScaler.update: no inf checks were recorded prior to update(); call step(optimizer) (or unscale_) first.');
      if (found.some((f) => f > 0)) {
        this.#scale = Math.fround(this.#scale * this.#backoffFactor);
        this.#growthTracker = 0;
      } else {
        const successful = this.#growthTracker + 1;
        if (successful === this.#growthInterval) {
          const grown = Math.fround(this.#scale * this.#growthFactor);
          if (Number.isFinite(grown)) this.#scale = grown;
          this.#growthTracker = 0;
        } else {
          this.#growthTracker = successful;
        }
      }
    }
    this.#perOptimizer.clear();
  }

  /** The scale and its schedule, for a checkpoint ({} when disabled, as in PyTorch). */
  stateDict(): GradScalerState | Record<string, never> {
    if (!this.#enabled) return {};
    return { scale: this.#scale, growthFactor: this.#growthFactor, backoffFactor: this.#backoffFactor, growthInterval: this.#growthInterval, growthTracker: this.#growthTracker };
  }

  /** Restores stateDict() (or PyTorch's GradScaler.state_dict(), with its snake_case keys). */
  loadStateDict(sd: Partial<GradScalerState> & Record<string, unknown>): void {
    if (!this.#enabled) throw new TesseraError('GradScaler.loadStateDict: this scaler is disabled; construct it with enabled: true to load a state.');
    if (Object.keys(sd).length === 0) {
      throw new TesseraError('GradScaler.loadStateDict: the state is empty, possibly because it was saved from a disabled GradScaler.');
    }
    const num = (camel: string, snake: string): number => {
      const v = sd[camel] ?? sd[snake];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new TesseraError(`GradScaler.loadStateDict: '${camel}' must be a finite number, got ${JSON.stringify(v)}.`);
      return v;
    };
    this.#scale = Math.fround(num('scale', 'scale'));
    this.#growthFactor = num('growthFactor', 'growth_factor');
    this.#backoffFactor = num('backoffFactor', 'backoff_factor');
    this.#growthInterval = num('growthInterval', 'growth_interval');
    this.#growthTracker = num('growthTracker', '_growth_tracker');
    // A restored scaler continues mid-run: its loss has been scaled before.
    this.#scaled = true;
  }
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new TesseraError(`GradScaler: ${message}`);
}
