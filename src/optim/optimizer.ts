// Optimizer: parameter groups, per-parameter state, and the in-place update loop shared by SGD, Adam,
// AdamW, RMSprop and Adagrad.
//
// Updates run outside autodiff on the values themselves: for each parameter the optimizer reads the
// parameter, its gradient and its state tensors, applies PyTorch's formula element by element (in
// float64 arithmetic), and writes the results back into the same storages. The parameter tensors keep
// their identity (modules, tied weights and views see the new values), and one kernel-free loop per
// parameter is much cheaper than a dozen elementwise ops on the reference backend.
//
// A backend may run the whole update itself (Backend.optimizerUpdate, the wasm backend's SIMD
// kernels, in float32 arithmetic like PyTorch's for float32 parameters): each optimizer describes
// its step as an OptimizerRule (fusedRule), and float32 parameters go there first; what the backend
// declines (dtypes, layouts) and every float64 parameter take the loop below.
import { TesseraError, check, fmtShape } from '../core/errors.js';
import { isFloating, type TypedArray } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import { zeros } from '../ops/creation.js';
import { innermostDispatchObserver } from '../ops/dispatch.js';
import { keep } from '../core/memory.js';
import { assignValues } from '../nn/inplace.js';
import type { KernelInput, OptimizerRule } from '../backend/backend.js';

/** Hyper-parameters every optimizer has. */
export interface BaseOptions {
  lr: number;
}

/** A group of parameters sharing hyper-parameters. */
export type ParamGroup<O extends BaseOptions> = O & { params: Tensor[]; initialLr?: number };

/** What the constructor accepts: parameters, or groups of parameters with their own options. */
export type ParamsArg<O extends BaseOptions> = Iterable<Tensor> | Array<Partial<O> & { params: Iterable<Tensor> }>;

/** One parameter's state: tensors shaped like the parameter, and counters. */
export type ParamState = Record<string, Tensor | number>;

export interface OptimizerStateDict<O extends BaseOptions = BaseOptions> {
  /** State by parameter index (counted over all groups, in order). */
  state: Record<string, ParamState>;
  /** Groups with their options and the indices of their parameters. */
  paramGroups: Array<O & { params: number[]; initialLr?: number }>;
}

/** Element arrays an update works on: float64 copies, or (see updatesInPlace) the tensors' own float32/float64 memory. */
export type UpdateArray = Float64Array | Float32Array;

/** The values a per-element update reads and writes. */
export interface UpdateContext<O> {
  group: O;
  /** Parameter values (written back after the update). */
  param: UpdateArray;
  /** Gradient values (read only). */
  grad: UpdateArray;
  /** State arrays by name (written back after the update). */
  state: Record<string, UpdateArray>;
  /** Scalar counters of this parameter (e.g. step), mutable. */
  counters: Record<string, number>;
}

/**
 * Takes over step() while a trace is active (src/graph/traced-optimizers.ts installs it), so that
 * the update is written with ops and compiles into the jitted graph; returns false to let the
 * element loop below run (no trace: the fast eager path is unchanged).
 */
export type TracedStepHandler = (optimizer: Optimizer<BaseOptions>) => boolean;
let tracedStepHandler: TracedStepHandler | undefined;

export function setTracedStepHandler(h: TracedStepHandler | undefined): void {
  tracedStepHandler = h;
}

export abstract class Optimizer<O extends BaseOptions> {
  readonly paramGroups: ParamGroup<O>[] = [];
  readonly state = new Map<Tensor, ParamState>();

  constructor(params: ParamsArg<O>, readonly defaults: O) {
    const list = [...(params as Iterable<unknown>)];
    check(list.length > 0, this.constructor.name, () => 'got an empty parameter list; pass model.parameters().');
    type GroupArg = Partial<O> & { params: Iterable<Tensor> };
    const groups = list[0] instanceof Tensor ? [{ params: list as Tensor[] } as unknown as GroupArg] : (list as GroupArg[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group; options it does not give come from the defaults. */
  addParamGroup(group: Partial<O> & { params: Iterable<Tensor> }): void {
    const params = [...group.params];
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    params.forEach((p, i) => {
      check(p instanceof Tensor, this.constructor.name, () => `parameter ${i} of a group is not a tensor.`);
      check(isFloating(p.dtype) && p.isLeaf, this.constructor.name, () => `parameter ${i} (shape ${fmtShape(p.shape)}, ${p.dtype}) must be a floating-point leaf tensor.`);
      check(!seen.has(p), this.constructor.name, () => `parameter ${i} (shape ${fmtShape(p.shape)}) appears in more than one group; each parameter belongs to one group.`);
      seen.add(p);
    });
    const merged = { ...this.defaults, ...group, params } as ParamGroup<O>;
    this.validateOptions(merged);
    this.paramGroups.push(merged);
  }

  /** Throws for invalid hyper-parameters (each optimizer checks its own). */
  protected validateOptions(group: O): void {
    check(Number.isFinite(group.lr) && group.lr >= 0, this.constructor.name, () => `learning rate ${group.lr} must be a non-negative number.`);
  }

  /** Sets every parameter's gradient to undefined (PyTorch's set_to_none=True). */
  zeroGrad(): void {
    // A gradient only backward and step() saw is disposed now (Tensor._replaceGrad); one the caller read stays valid.
    const dispose = innermostDispatchObserver() === undefined;
    for (const g of this.paramGroups) for (const p of g.params) p._replaceGrad(undefined, dispose);
  }

  /** Names of the state tensors this optimizer keeps for a parameter of a group. */
  protected abstract stateNames(group: O): string[];

  /** Initial value of a state tensor (0 unless overridden, e.g. Adagrad's initial accumulator). */
  protected initialState(_name: string, _group: O): number {
    return 0;
  }

  /**
   * This step's update of a parameter as a rule a backend can run in one pass (Backend.optimizerUpdate),
   * advancing `counters` (a copy, kept only if the backend ran it) and creating any state tensor the
   * rule needs that `state` lacks (removed again if the backend declines); undefined when the
   * optimizer has no such rule.
   */
  protected fusedRule(_group: O, _counters: Record<string, number>, _state: ParamState, _param: Tensor): OptimizerRule | undefined {
    return undefined;
  }

  /** A new state tensor shaped like the parameter, filled with `value`, that outlives memory scopes. */
  protected createState(p: Tensor, value: number): Tensor {
    return keep(fillLike(p, value));
  }

  /** The update of one parameter, on float64 copies of its values (or their own memory, see updatesInPlace). */
  protected abstract update(ctx: UpdateContext<O>): void;

  /**
   * True when update() reads each stored element once and writes it once, computing in float64
   * locals: then handing it the tensors' own float32/float64 memory gives the same values as the
   * float64 copies (one rounding per write either way) without copying every parameter, gradient
   * and state tensor twice per step, which dominated a training step's time.
   */
  protected readonly updatesInPlace: boolean = false;

  /**
   * One optimization step over every parameter that has a gradient. With a closure, the closure is
   * called first (it should recompute the loss and gradients) and its loss is returned.
   */
  step(closure?: () => number): number | undefined {
    const loss = closure?.();
    if (tracedStepHandler !== undefined && tracedStepHandler(this as unknown as Optimizer<BaseOptions>)) return loss;
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        // Read without marking it seen: the update only reads it (see Tensor._peekGrad).
        const grad = p._peekGrad();
        if (grad === undefined) continue;
        check(grad.shape.length === p.shape.length && grad.shape.every((d, i) => d === p.shape[i]), this.constructor.name, () =>
          `the gradient of a parameter has shape ${fmtShape(grad.shape)} but the parameter has ${fmtShape(p.shape)}.`);
        let st = this.state.get(p);
        if (st === undefined) {
          st = {};
          this.state.set(p, st);
        }
        this.updateParameter(group, p, grad, st);
      }
    }
    return loss;
  }

  /**
   * One parameter's update, as step() makes it: creates the state tensors `st` lacks, then runs the
   * backend's fused kernel, the in-place loop or the float64-copy loop, writing `p` and the state
   * tensors and advancing the counters in `st`. The traced step under a GradScaler
   * (graph/masked-optimizer-step.ts) runs it on copies of a parameter and its state, so that a
   * compiled step gives the eager step's bits.
   */
  updateParameter(group: ParamGroup<O>, p: Tensor, grad: Tensor, st: ParamState): void {
    // keep(): state outlives any memory scope the step runs in.
    for (const name of this.stateNames(group)) if (!(st[name] instanceof Tensor)) st[name] = keep(fillLike(p, this.initialState(name, group)));
    const counters: Record<string, number> = {};
    for (const [name, v] of Object.entries(st)) if (!(v instanceof Tensor)) counters[name] = v;
    if (this.runFused(group, p, grad, st, counters)) return;
    if (this.updatesInPlace && this.updateInPlace(group, p, grad, st, counters)) return;
    const stateArrays: Record<string, Float64Array> = {};
    for (const [name, v] of Object.entries(st)) if (v instanceof Tensor) stateArrays[name] = toFloat64(v.data());
    const param = toFloat64(p.data());
    this.update({ group, param, grad: toFloat64(grad.data()), state: stateArrays, counters });
    assignValues(p, param, `${this.constructor.name}.step`);
    for (const [name, values] of Object.entries(stateArrays)) {
      const existing = st[name];
      if (existing instanceof Tensor) assignValues(existing, values, `${this.constructor.name}.step`);
      else st[name] = keep(fromFloat64Like(p, values));
    }
    for (const [name, v] of Object.entries(counters)) st[name] = v;
  }

  /**
   * Hands a float32 parameter's update to its backend's fused kernel (Backend.optimizerUpdate);
   * returns false, with state and counters as they were, when there is none or it declines.
   */
  private runFused(group: O, p: Tensor, grad: Tensor, st: ParamState, counters: Record<string, number>): boolean {
    const backend = p.storage.backend;
    if (backend.optimizerUpdate === undefined || p.dtype !== 'float32') return false;
    const had = new Set(Object.keys(st));
    const next = { ...counters };
    const rule = this.fusedRule(group, next, st, p);
    if (rule === undefined) return false;
    const op = `${this.constructor.name}.step`;
    const state: Record<string, KernelInput> = {};
    for (const [name, v] of Object.entries(st)) if (v instanceof Tensor) state[name] = v.asKernelInput(op);
    if (backend.optimizerUpdate({ rule, param: p.asKernelInput(op), grad: grad.asKernelInput(op), state })) {
      for (const [name, v] of Object.entries(next)) st[name] = v;
      return true;
    }
    for (const [name, v] of Object.entries(st)) {
      if (had.has(name)) continue;
      if (v instanceof Tensor) v.dispose();
      delete st[name];
    }
    return false;
  }

  /**
   * Runs update() directly on the memory of the parameter and its state tensors when all of them
   * are contiguous float32/float64 storages of a backend whose readAll returns its live memory
   * (cpu, wasm); returns false (nothing done) otherwise. f16/bf16 are excluded: their writes need
   * rounding to the format.
   */
  private updateInPlace(group: O, p: Tensor, grad: Tensor, st: ParamState, counters: Record<string, number>): boolean {
    const param = liveFloatArray(p);
    if (param === undefined) return false;
    const state: Record<string, UpdateArray> = {};
    for (const [name, v] of Object.entries(st)) {
      if (!(v instanceof Tensor)) continue;
      const live = v.dtype === p.dtype ? liveFloatArray(v) : undefined;
      if (live === undefined) return false;
      state[name] = live;
    }
    // The gradient is only read: a copy (e.g. of a broadcast view) is fine. Read it before taking
    // the live views again, since a copy on the wasm backend may allocate (and grow the memory).
    const gradValues = liveFloatArray(grad) ?? (grad.data() as UpdateArray);
    const gradArray = gradValues instanceof Float32Array || gradValues instanceof Float64Array ? gradValues : Float64Array.from(gradValues);
    const paramNow = liveFloatArray(p)!;
    for (const name of Object.keys(state)) state[name] = liveFloatArray(st[name] as Tensor)!;
    this.update({ group, param: paramNow, grad: gradArray, state, counters });
    for (const [name, v] of Object.entries(counters)) st[name] = v;
    return true;
  }

  /** Options and state by parameter index, like torch's optimizer.state_dict(). Tensors are copies. */
  stateDict(): OptimizerStateDict<O> {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...options } = g;
      return { ...(options as unknown as O), params: params.map((p) => { const i = index.size; index.set(p, i); return i; }) };
    });
    const state: Record<string, ParamState> = {};
    for (const [p, st] of this.state) {
      const i = index.get(p);
      if (i === undefined) continue;
      const copy: ParamState = {};
      for (const [k, v] of Object.entries(st)) copy[k] = v instanceof Tensor ? v.clone() : v;
      state[String(i)] = copy;
    }
    return { state, paramGroups };
  }

  /** Restores options and state saved by stateDict() into an optimizer over the same parameters. */
  loadStateDict(sd: OptimizerStateDict<O>): void {
    const name = `${this.constructor.name}.loadStateDict`;
    check(sd.paramGroups.length === this.paramGroups.length, name, () =>
      `the saved optimizer has ${sd.paramGroups.length} parameter groups but this one has ${this.paramGroups.length}; build it with the same groups.`);
    const params: Tensor[] = [];
    sd.paramGroups.forEach((saved, gi) => {
      const mine = this.paramGroups[gi]!;
      check(saved.params.length === mine.params.length, name, () =>
        `group ${gi} had ${saved.params.length} parameters when saved but has ${mine.params.length} now; build the optimizer over the same model.`);
      params.push(...mine.params);
    });
    this.state.clear();
    for (const [key, st] of Object.entries(sd.state)) {
      const p = params[Number(key)];
      if (p === undefined) throw new TesseraError(`${name}: state for parameter index ${key}, but there are only ${params.length} parameters.`);
      const restored: ParamState = {};
      for (const [k, v] of Object.entries(st)) {
        if (v instanceof Tensor) {
          check(v.shape.length === p.shape.length && v.shape.every((d, i) => d === p.shape[i]), name, () =>
            `state '${k}' of parameter ${key} has shape ${fmtShape(v.shape)} but the parameter has ${fmtShape(p.shape)}.`);
          const t = zeros(p.shape, { dtype: p.dtype, backend: p.backend });
          assignValues(t, v, name);
          restored[k] = t;
        } else {
          restored[k] = Number(v);
        }
      }
      this.state.set(p, restored);
    }
    sd.paramGroups.forEach((saved, gi) => {
      const { params: _ignored, ...options } = saved;
      Object.assign(this.paramGroups[gi]!, options);
    });
  }
}

/** Backends whose readAll returns the storage's live memory rather than a copy. */
const LIVE_MEMORY_BACKENDS = new Set(['cpu', 'wasm']);

/** The tensor's elements as a live view of its storage, when contiguous float32/float64 on such a backend. */
function liveFloatArray(t: Tensor): UpdateArray | undefined {
  if ((t.dtype !== 'float32' && t.dtype !== 'float64') || !t.isContiguous()) return undefined;
  const backend = t.storage.backend;
  if (!LIVE_MEMORY_BACKENDS.has(backend.name)) return undefined;
  const all = backend.readAll(t.storage);
  if (!(all instanceof Float32Array || all instanceof Float64Array)) return undefined;
  return all.subarray(t.offset, t.offset + t.size);
}

function toFloat64(values: TypedArray): Float64Array {
  return values instanceof Float64Array ? values : Float64Array.from(values);
}

function fillLike(p: Tensor, value: number): Tensor {
  const t = zeros(p.shape, { dtype: p.dtype, backend: p.backend });
  if (value !== 0) assignValues(t, new Float64Array(p.size).fill(value));
  return t;
}

function fromFloat64Like(p: Tensor, values: Float64Array): Tensor {
  const t = zeros(p.shape, { dtype: p.dtype, backend: p.backend });
  assignValues(t, values);
  return t;
}
