// float32 master weights for a model held in float16/bfloat16 (Micikevicius et al., "Mixed
// Precision Training", ICLR 2018): the model's parameters stay in the half format (half the memory,
// and the forward and backward run in it), while the optimizer updates float32 copies and writes
// them back rounded after every step.
//
// Why: an update smaller than half the spacing of the format at a weight's value is lost when added
// to the weight in that format. bfloat16 has 8 significant bits: at 1.0 its spacing is 2^-7 ≈ 0.0078,
// so any step below 0.0039 (Adam's usual lr·1 = 1e-3, say) rounds back to the same weight, every
// step, and training stalls. In float32 the small steps accumulate until they move the rounded
// weight. The optimizer's state (Adam's moments) is float32 too (made for the float32 masters);
// the plain optimizers would keep it in the parameters' dtype.
//
// The wrapper is an Optimizer: schedulers, clipping of its params (the masters), the trainer and
// GradScaler (which calls prepareGrads(), so loss scaling is undone in float32) work with it.
//
// With `masterBackend`, every parameter gets a float32 master on that backend, so the masters and
// the inner optimizer's state (Adam's two moments: 3x the parameters in all) live there and the
// update runs there: ZeRO-Offload's optimizer-state offload (Ren et al. 2021), e.g. a model on
// 'webgpu' updated on 'wasm' in host memory. Gradients go over once per step, parameters back once.
import { TesseraError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { keep } from '../core/memory.js';
import { noGrad } from '../autodiff/mode.js';
import { cast, where } from '../ops/elementwise.js';
import { innermostDispatchObserver } from '../ops/dispatch.js';
import { fromValues } from '../ops/creation.js';
import { getBackend } from '../backend/backend.js';
import { detach } from '../ops/shape.js';
import { assignValues } from '../nn/inplace.js';
import { assign } from '../graph/state.js';
import { activeSkipMask } from '../graph/masked-optimizer-step.js';
import { Parameter } from '../nn/module.js';
import { Optimizer, type BaseOptions, type OptimizerStateDict, type ParamState, type UpdateContext } from '../optim/optimizer.js';

const LOW_PRECISION = new Set(['float16', 'bfloat16']);

/**
 * A float32 leaf holding p's values: on `backend` when given (every parameter then has a master
 * there), else only for half-precision p (p itself when p is float32 or float64: nothing to keep apart).
 */
function masterOf(p: Tensor, backend: string | undefined): Tensor {
  if (backend !== undefined && (backend !== p.backend || LOW_PRECISION.has(p.dtype))) {
    const dtype = p.dtype === 'float64' ? 'float64' : 'float32';
    return keep(new Parameter(toBackend(p, dtype, backend)));
  }
  if (!LOW_PRECISION.has(p.dtype)) return p;
  return keep(new Parameter(noGrad(() => detach(cast(p, 'float32')))));
}

/** A copy of t's values as `dtype` on `backend` (outside autodiff). */
function toBackend(t: Tensor, dtype: 'float32' | 'float64', backend: string): Tensor {
  if (t.backend === backend) return noGrad(() => detach(cast(t, dtype)));
  const values = t.data();
  const typed = dtype === 'float64' ? Float64Array.from(values as ArrayLike<number>) : values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  return fromValues(typed, t.shape, dtype, { backend });
}

export interface MasterWeightOptions {
  /**
   * Keep the masters, and so the inner optimizer's state and update, on this backend (e.g. 'wasm'
   * or 'cpu' for a model on 'webgpu'): optimizer-state offload. Default: the parameters' backend.
   */
  masterBackend?: string;
}

/**
 * Wraps an optimizer so that it updates float32 master copies of float16/bfloat16 parameters:
 *
 *   const opt = new quant.MasterWeightOptimizer(model.parameters(), (masters) => new optim.Adam(masters, { lr: 1e-3 }));
 *
 * `makeOptimizer` receives the masters in the order of `params` (float32 parameters are their own
 * master) and may arrange them in groups. step() copies the model's gradients to the masters (as
 * float32), steps the inner optimizer and writes the masters back, rounded, into the model's
 * parameters (in place: the model keeps its tensors).
 */
export class MasterWeightOptimizer<O extends BaseOptions = BaseOptions> extends Optimizer<O> {
  /** The optimizer that updates the masters. */
  readonly inner: Optimizer<O>;
  /** The model's parameters, in the order given. */
  readonly modelParams: readonly Tensor[];
  /** Their float32 masters (a float32 parameter is its own master), in the same order. */
  readonly masters: readonly Tensor[];
  /** The model gradients (and their versions) last copied to the masters; a step consumes them. */
  private prepared: { grad: Tensor | undefined; version: number }[] | undefined;

  /** Where the masters live (undefined: with the parameters). */
  readonly masterBackend: string | undefined;

  constructor(params: Iterable<Tensor>, makeOptimizer: (masters: Tensor[]) => Optimizer<O>, options: MasterWeightOptions = {}) {
    const modelParams = [...params];
    if (modelParams.length === 0) throw new TesseraError('MasterWeightOptimizer: got an empty parameter list; pass model.parameters().');
    if (options.masterBackend !== undefined) getBackend(options.masterBackend);
    const masters = modelParams.map((p) => masterOf(p, options.masterBackend));
    const inner = makeOptimizer(masters);
    super(masters, inner.defaults);
    // One set of group objects: a scheduler moving this optimizer's lr moves the inner one's.
    this.paramGroups.length = 0;
    this.paramGroups.push(...inner.paramGroups);
    const grouped = new Set(inner.paramGroups.flatMap((g) => g.params));
    masters.forEach((m, i) => {
      if (!grouped.has(m)) throw new TesseraError(`MasterWeightOptimizer: makeOptimizer left out the master of parameter ${i}; build the optimizer over all the masters it is given.`);
    });
    this.inner = inner;
    this.masterBackend = options.masterBackend;
    this.modelParams = modelParams;
    this.masters = masters;
    this.prepared = undefined;
  }

  protected stateNames(): string[] {
    return [];
  }

  protected update(_ctx: UpdateContext<O>): void {
    throw new TesseraError('MasterWeightOptimizer: update() is the inner optimizer\'s; call step().');
  }

  /**
   * Copies the model's gradients to the masters as float32 (once per backward: later calls with the
   * same gradients do nothing). GradScaler.unscale_ calls it, so the scaled gradients are unscaled in
   * float32; call it yourself before clipping the masters' gradients.
   */
  prepareGrads(): void {
    // _peekGrad: reading the model's gradients here does not make them the caller's, so zeroGrad
    // can still dispose them (Tensor._replaceGrad); `prepared` keeps them only to compare identities.
    const now = this.modelParams.map((p) => ({ grad: p._peekGrad(), version: p._peekGrad()?.storage.version ?? 0 }));
    if (this.prepared !== undefined && now.every((s, i) => s.grad === this.prepared![i]!.grad && s.version === this.prepared![i]!.version)) return;
    noGrad(() => {
      this.modelParams.forEach((p, i) => {
        const m = this.masters[i]!;
        if (m === p) return;
        const old = m.grad;
        const g = p._peekGrad();
        m.grad = g === undefined ? undefined : keep(toBackend(g, m.dtype === 'float64' ? 'float64' : 'float32', m.backend));
        if (old !== undefined && old !== m.grad) old.dispose();
      });
    });
    this.prepared = now;
  }

  /** Steps the inner optimizer on the masters and writes them back, rounded, into the model's parameters. */
  override step(closure?: () => number): number | undefined {
    const loss = closure?.();
    // Under a traced GradScaler's skip mask (inside jit) the write-back is masked too (the masters are already).
    // (The scaler refuses masters on another backend there.)
    const skip = activeSkipMask();
    this.prepareGrads();
    this.inner.step();
    noGrad(() => {
      this.modelParams.forEach((p, i) => {
        const m = this.masters[i]!;
        if (m === p || m.grad === undefined) return;
        if (skip !== undefined) assign(p, where(skip, p, cast(m, p.dtype)));
        else assignValues(p, m, 'MasterWeightOptimizer.step');
      });
    });
    this.prepared = undefined;
    return loss;
  }

  override zeroGrad(): void {
    // As Optimizer.zeroGrad: a model gradient only autograd and this optimizer saw is disposed now.
    const dispose = innermostDispatchObserver() === undefined;
    for (let i = 0; i < this.modelParams.length; i++) {
      const m = this.masters[i]!;
      if (m !== this.modelParams[i]) {
        m.grad?.dispose();
        m.grad = undefined;
      }
      this.modelParams[i]!._replaceGrad(undefined, dispose);
    }
    this.prepared = undefined;
  }

  /** Copies the model's (rounded) values into the masters, e.g. after loading the model's weights. */
  copyParamsToMasters(): void {
    noGrad(() => this.modelParams.forEach((p, i) => {
      const m = this.masters[i]!;
      if (m !== p) assignValues(m, toBackend(p, m.dtype === 'float64' ? 'float64' : 'float32', m.backend), 'MasterWeightOptimizer.copyParamsToMasters');
    }));
  }

  /** The inner optimizer's state, each half-precision parameter's entry with its float32 master under 'master'. */
  override stateDict(): OptimizerStateDict<O> {
    const sd = this.inner.stateDict();
    const index = this.indexOfMasters();
    this.masters.forEach((m, i) => {
      if (m === this.modelParams[i]) return;
      const key = String(index.get(m)!);
      sd.state[key] = { ...(sd.state[key] ?? {}), master: m.clone() };
    });
    return sd;
  }

  /** Restores stateDict(): the masters from their saved values (or, saved without, from the model's parameters). */
  override loadStateDict(sd: OptimizerStateDict<O>): void {
    this.copyParamsToMasters();
    const index = this.indexOfMasters();
    const byIndex = new Map<number, Tensor>([...index].map(([m, i]) => [i, m]));
    const state: Record<string, ParamState> = {};
    for (const [key, st] of Object.entries(sd.state)) {
      const { master, ...rest } = st;
      const m = byIndex.get(Number(key));
      if (master !== undefined && typeof master !== 'number' && m !== undefined) assignValues(m, master, 'MasterWeightOptimizer.loadStateDict');
      state[key] = rest;
    }
    this.inner.loadStateDict({ ...sd, state });
    this.prepared = undefined;
  }

  /** Each master's index in the inner optimizer's parameter order (its state dict's keys). */
  private indexOfMasters(): Map<Tensor, number> {
    const index = new Map<Tensor, number>();
    for (const g of this.inner.paramGroups) for (const p of g.params) index.set(p, index.size);
    return index;
  }
}
