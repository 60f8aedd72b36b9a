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
//
// Inside a traced function (jit) nothing is read back: the scale, the growth tracker, the count of
// skipped steps and each optimizer's found-inf flag are float32 scalars on the loss's backend that
// the graph reads and writes (live tensors, like a traced optimizer's state). unscale_ multiplies
// by 1/scale on the backend and computes found-inf there; step() runs the optimizer's update under a
// skip mask (graph/masked-optimizer-step.ts: parameters, state and step counters are kept by
// `where` when found-inf is set); update() computes the next scale and tracker with `where`, by the
// same rules as the eager update (torch._amp_update_scale_). The JS fields then lag behind: the
// getters and stateDict() read the scalars, eager calls start from them, and a replay hook pushes
// values set by eager code (loadStateDict, an eager update) to the scalars before the next compiled run.
import { TesseraError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { add, cast, div, eq, gt, logicalAnd, lt, mul, isnan, where } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { copy_ } from '../ops/inplace.js';
import { scalar, zeros } from '../ops/creation.js';
import { keep, scope } from '../core/memory.js';
import { assignValues } from '../nn/inplace.js';
import { assign } from '../graph/state.js';
import { activeTracer, withoutRecording, type Tracer } from '../graph/trace.js';
import { withSkipMask } from '../graph/masked-optimizer-step.js';

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
  /**
   * 1 when a gradient was inf/NaN at unscale_, 0 when all were finite; undefined when there were no
   * gradients. Inside a trace: a float32 scalar holding 1 or 0.
   */
  foundInf: number | Tensor | undefined;
}

/** The scaler's state as float32 scalars (the factors also as float64 ones), read and written by traced graphs. */
interface DeviceState {
  backend: string;
  scale: Tensor;
  growthTracker: Tensor;
  skipped: Tensor;
  growthInterval: Tensor;
  growthFactor32: Tensor;
  backoffFactor32: Tensor;
  growthFactor64: Tensor;
  backoffFactor64: Tensor;
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
  #device: DeviceState | undefined;
  /** Whether #device holds the newest scale, tracker and skip count (a compiled step ran since JS last set them). */
  #onDevice = false;
  /** The traces that registered this scaler's replay hook. */
  #tracers = new WeakSet<Tracer>();

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

  /** The current scale (1 when disabled, like PyTorch's get_scale). After compiled steps it reads the device value. */
  getScale(): number {
    this.#syncFromDevice();
    return this.#enabled ? this.#scale : 1;
  }
  getGrowthFactor(): number { return this.#growthFactor; }
  setGrowthFactor(f: number): void { this.#growthFactor = f; }
  getBackoffFactor(): number { return this.#backoffFactor; }
  setBackoffFactor(f: number): void { this.#backoffFactor = f; }
  getGrowthInterval(): number { return this.#growthInterval; }
  setGrowthInterval(n: number): void { this.#growthInterval = n; }
  /** Good steps since the scale last changed. */
  getGrowthTracker(): number {
    this.#syncFromDevice();
    return this.#growthTracker;
  }
  /** Steps step() skipped because of inf/NaN gradients since the scaler was made. */
  get skippedSteps(): number {
    this.#syncFromDevice();
    return this.#skipped;
  }

  /** After compiled steps: copies the device scalars into the JS fields, which are then authoritative again. */
  #syncFromDevice(): void {
    if (!this.#onDevice || this.#device === undefined) return;
    const d = this.#device;
    this.#scale = d.scale.item();
    this.#growthTracker = d.growthTracker.item();
    this.#skipped = d.skipped.item();
    this.#onDevice = false;
  }

  /** Writes the JS fields into the device scalars (a replay hook, before a compiled run). */
  #pushToDevice(d: DeviceState): () => void {
    const wasOnDevice = this.#onDevice;
    withoutRecording(() => {
      if (!this.#onDevice) {
        assignValues(d.scale, [this.#scale]);
        assignValues(d.growthTracker, [this.#growthTracker]);
        assignValues(d.skipped, [this.#skipped]);
      }
      // The schedule may change between calls (setGrowthFactor, ...): live scalars, refreshed every run.
      assignValues(d.growthFactor32, [this.#growthFactor]);
      assignValues(d.backoffFactor32, [this.#backoffFactor]);
      assignValues(d.growthFactor64, [this.#growthFactor]);
      assignValues(d.backoffFactor64, [this.#backoffFactor]);
      assignValues(d.growthInterval, [this.#growthInterval]);
    });
    this.#onDevice = true;
    return () => { this.#onDevice = wasOnDevice; };
  }

  /**
   * The device state for a trace on `backend` (made on first use), registered with the tracer as
   * live tensors and with a replay hook that pushes what eager code set.
   */
  #deviceFor(tracer: Tracer, backend: string): DeviceState {
    let d = this.#device;
    if (d !== undefined && d.backend !== backend) {
      throw new TesseraError(`GradScaler: inside jit this scaler's state lives on backend '${d.backend}' (the loss's), and it was asked to work on '${backend}' too. ` +
        'Keep the loss and the optimizer\'s parameters on one backend (a MasterWeightOptimizer with a masterBackend is not supported inside jit), and use one scaler per backend.');
    }
    if (d === undefined) {
      const make = (dtype: 'float32' | 'float64'): Tensor => keep(withoutRecording(() => zeros([], { dtype, backend })));
      d = this.#device = {
        backend, scale: make('float32'), growthTracker: make('float32'), skipped: make('float32'), growthInterval: make('float32'),
        growthFactor32: make('float32'), backoffFactor32: make('float32'), growthFactor64: make('float64'), backoffFactor64: make('float64'),
      };
    }
    if (!this.#tracers.has(tracer)) {
      this.#tracers.add(tracer);
      const state = d;
      for (const t of [d.scale, d.growthTracker, d.skipped, d.growthInterval, d.growthFactor32, d.backoffFactor32, d.growthFactor64, d.backoffFactor64]) tracer.liveTensors.add(t);
      const hook = (): (() => void) => this.#pushToDevice(state);
      hook();
      tracer.replayHooks.push(hook);
    }
    return d;
  }

  /** The loss (or losses) times the scale, for backward(). Disabled: the input itself. */
  scale(loss: Tensor): Tensor;
  scale(losses: readonly Tensor[]): Tensor[];
  scale(loss: Tensor | readonly Tensor[]): Tensor | Tensor[] {
    if (!this.#enabled) return Array.isArray(loss) ? [...loss] : (loss as Tensor);
    const losses: readonly Tensor[] = Array.isArray(loss) ? loss : [loss as Tensor];
    const tracer = activeTracer();
    this.#scaled = true;
    if (tracer !== undefined && losses.length > 0) {
      const d = this.#deviceFor(tracer, losses[0]!.backend);
      // cast: as a JS number, the scale would become a scalar of the loss's dtype.
      const scaled = losses.map((l) => mul(l, cast(d.scale, l.dtype)));
      return Array.isArray(loss) ? scaled : scaled[0]!;
    }
    this.#syncFromDevice();
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
    // _peekGrad: unscaling in place does not make the gradients the caller's (zeroGrad may still
    // dispose them, see Tensor._replaceGrad); the traced path below rebinds .grad as a graph write.
    for (const g of optimizer.paramGroups) for (const p of g.params) if (p._peekGrad() !== undefined) params.push(p);
    for (const p of params) {
      if (p._peekGrad()!.dtype === 'float16') {
        throw new TesseraError('GradScaler.unscale_: attempting to unscale float16 gradients (they would underflow once divided by the scale). ' +
          'Keep the parameters in float32 and run the forward under autocast, or wrap the optimizer in quant.MasterWeightOptimizer.');
      }
    }
    const tracer = activeTracer();
    if (tracer !== undefined) {
      st.foundInf = params.length === 0 ? undefined : this.#unscaleOnDevice(tracer, params);
      st.stage = 'unscaled';
      return;
    }
    if (this.#device !== undefined && [...this.#perOptimizer.values()].some((o) => o.foundInf instanceof Tensor)) throw mixedIteration('unscale_');
    this.#syncFromDevice();
    // float32 reciprocal of the float32 scale, as PyTorch computes inv_scale.
    const inv = Math.fround(1 / this.#scale);
    // In a scope: the products and sums made here go when it ends (a synchronous loop would keep
    // them until the event loop turns); the unscaled gradients are written in place or kept.
    st.foundInf = params.length === 0 ? undefined : noGrad(() => scope(() => {
      let check: Tensor | undefined;
      for (const p of params) {
        const g = p._peekGrad()!;
        const s = sum(mul(g, 0));
        check = check === undefined ? s : add(check, s);
        const unscaled = mul(g, inv);
        // In place, like PyTorch, unless the gradient is a broadcast view (several elements, one memory).
        if (g.strides.every((stride, i) => stride !== 0 || g.shape[i]! <= 1)) copy_(g, unscaled);
        else p._replaceGrad(keep(unscaled), true);
      }
      return Number.isFinite(check!.item()) ? 0 : 1;
    }));
    st.stage = 'unscaled';
  }

  /** unscale_ inside a trace: the eager computation with the scale and the verdict as device scalars. */
  #unscaleOnDevice(tracer: Tracer, params: readonly Tensor[]): Tensor {
    const d = this.#deviceFor(tracer, params[0]!.backend);
    return noGrad(() => {
      // float32: 1 / scale rounded once, as the eager Math.fround(1 / scale).
      const inv = div(1, d.scale);
      let check: Tensor | undefined;
      for (const p of params) {
        const g = p.grad!;
        const s = sum(mul(g, 0));
        check = check === undefined ? s : add(check, s);
        // Rebinding .grad (a graph write of the parameter's gradient), not copy_: the gradient is a value of this trace.
        p.grad = keep(mul(g, cast(inv, g.dtype)));
      }
      // sum(g · 0) is 0 or NaN, never ±inf: NaN marks an inf/NaN gradient. (where, not cast: the
      // select compiles into the consumers' kernels, see the fuse-elementwise pass.)
      const backend = check!.backend;
      return keep(where(isnan(check!), scalar(1, 'float32', backend), scalar(0, 'float32', backend)));
    });
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
    const found = st.foundInf;
    if (found instanceof Tensor) {
      const tracer = activeTracer();
      if (tracer === undefined) throw mixedIteration('step');
      const d = this.#deviceFor(tracer, found.backend);
      // The optimizer's update always runs; `where` keeps the old values when found is set.
      const skip = noGrad(() => gt(found, 0));
      result = withSkipMask(skip, () => optimizer.step()) as ReturnType<O['step']>;
      noGrad(() => assign(d.skipped, add(d.skipped, found)));
    } else if (found === 0) {
      result = optimizer.step() as ReturnType<O['step']>;
    } else {
      this.#skipped++;
    }
    st.stage = 'stepped';
    return result;
  }

  /**
   * Updates the scale for the next iteration: backoff if any optimizer stepped over inf/NaN
   * gradients this iteration, growth after growthInterval clean ones; or sets it to `newScale`.
   */
  update(newScale?: number): void {
    if (!this.#enabled) return;
    const tracer = activeTracer();
    if (tracer !== undefined) {
      this.#updateOnDevice(tracer, newScale);
      return;
    }
    if ([...this.#perOptimizer.values()].some((o) => o.foundInf instanceof Tensor)) throw mixedIteration('update');
    this.#syncFromDevice();
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

  /**
   * update() inside a trace: the same rules as the eager update, as `where` over device scalars.
   * The eager scale times a factor is Math.fround(s · f): for a factor that float32 holds exactly
   * (2, 0.5) a float32 product is that (s · f is exact in float64, so one rounding either way) and
   * compiles into a wasm kernel; another factor (0.3) takes a float64 product rounded to float32.
   * Which one is fixed when traced; a replay hook refuses a later factor that needs the other.
   */
  #updateOnDevice(tracer: Tracer, newScale: number | undefined): void {
    if (newScale !== undefined) {
      throw new TesseraError('GradScaler.update(newScale) inside a traced (jit) function: the value would be baked into the graph. ' +
        'Call update(newScale) outside the jitted function (the next compiled run starts from it), or update() inside it.');
    }
    const found = [...this.#perOptimizer.values()].map((s) => s.foundInf).filter((f): f is number | Tensor => f !== undefined);
    if (found.length === 0) throw new TesseraError('GradScaler.update: no inf checks were recorded prior to update(); call step(optimizer) (or unscale_) first.');
    const tensors = found.filter((f): f is Tensor => f instanceof Tensor);
    if (tensors.length !== found.length) throw mixedIteration('update');
    const d = this.#deviceFor(tracer, tensors[0]!.backend);
    const exact = (f: number): boolean => Math.fround(f) === f;
    const growth32 = exact(this.#growthFactor), backoff32 = exact(this.#backoffFactor);
    tracer.replayHooks.push(() => {
      if ((growth32 && !exact(this.#growthFactor)) || (backoff32 && !exact(this.#backoffFactor))) {
        throw new TesseraError(`GradScaler.update: the growth factor ${this.#growthFactor} or backoff factor ${this.#backoffFactor} is not a float32 number, ` +
          'but the compiled step was traced with float32 ones (a float32 product then rounds differently); call reset() on the jitted function to trace it again.');
      }
      return () => {};
    });
    noGrad(() => {
      let any = tensors[0]!;
      for (const f of tensors.slice(1)) any = add(any, f);
      const overflow = gt(any, 0);
      const times = (factor32: Tensor, factor64: Tensor, f32: boolean): Tensor =>
        (f32 ? mul(d.scale, factor32) : cast(mul(cast(d.scale, 'float64'), factor64), 'float32'));
      const backedOff = times(d.backoffFactor32, d.backoffFactor64, backoff32);
      const grown = times(d.growthFactor32, d.growthFactor64, growth32);
      const successful = add(d.growthTracker, 1);
      const reached = eq(successful, d.growthInterval);
      // The scale is positive: grown is finite unless it overflowed to +inf.
      const grow = logicalAnd(reached, lt(grown, Infinity));
      const nextScale = where(overflow, backedOff, where(grow, grown, d.scale));
      const nextTracker = where(overflow, 0, where(reached, 0, successful));
      assign(d.scale, nextScale);
      assign(d.growthTracker, nextTracker);
    });
    this.#perOptimizer.clear();
  }

  /** The scale and its schedule, for a checkpoint ({} when disabled, as in PyTorch). */
  stateDict(): GradScalerState | Record<string, never> {
    if (!this.#enabled) return {};
    this.#syncFromDevice();
    return { scale: this.#scale, growthFactor: this.#growthFactor, backoffFactor: this.#backoffFactor, growthInterval: this.#growthInterval, growthTracker: this.#growthTracker };
  }

  /** Restores stateDict() (or PyTorch's GradScaler.state_dict(), with its snake_case keys). */
  loadStateDict(sd: Partial<GradScalerState> & Record<string, unknown>): void {
    if (!this.#enabled) throw new TesseraError('GradScaler.loadStateDict: this scaler is disabled; construct it with enabled: true to load a state.');
    if (Object.keys(sd).length === 0) {
      throw new TesseraError('GradScaler.loadStateDict: the state is empty, possibly because it was saved from a disabled GradScaler.');
    }
    // The skip count is not part of the state: keep the device's.
    this.#syncFromDevice();
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
    // Authoritative now; the next compiled run starts from these values.
    this.#onDevice = false;
    // A restored scaler continues mid-run: its loss has been scaled before.
    this.#scaled = true;
  }
}

/** unscale_/step/update of one iteration split between a jitted function and eager code. */
function mixedIteration(method: string): TesseraError {
  return new TesseraError(`GradScaler.${method}: this iteration's unscale_/step ran inside a traced (jit) function and ${method}() outside it (or the other way round). ` +
    'Put scale(loss).backward(), unscale_, step and update of an iteration all inside the jitted function, or all outside it.');
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new TesseraError(`GradScaler: ${message}`);
}
