// An optimizer step that a traced GradScaler skips on the device: `withSkipMask(found, () =>
// opt.step())` inside a trace records, for every parameter with a gradient,
//
//   %p', %m', %v', %step' = optimizerParamStep %p %grad %m %v %step     (the optimizer's own update)
//   p <- where(found, p, p');  m <- where(found, m, m');  ...;  step <- where(found, step, step')
//
// so a step with inf/NaN gradients leaves the parameters, the state tensors and the counters as
// they were, and the decision never goes through JavaScript: a compiled training step with dynamic
// loss scaling replays without reading a value back (JAX's apply_if_finite selects the same way;
// PyTorch's capturable optimizers keep their step counts in device tensors likewise).
//
// The node runs the optimizer's eager per-parameter update (Optimizer.updateParameter: the
// backend's fused kernel on wasm, the float64 element loop on cpu) on copies of the parameter and
// its state, with the counters read from the counter tensors inside the kernel. The compiled step
// therefore gives the eager step's bits on every backend and honours any change of the group's
// hyper-parameters between calls. Counters that eager code keeps as JS numbers (Adam's `step`, which
// a skipped step must not advance, and with it the bias corrections) live in float32 scalars; the
// parameter's JS state record reads them through an accessor, so `opt.state`, stateDict() and an
// eager step after compiled ones see the device values, and an eager write is pushed to the device
// by a replay hook before the next compiled run.
//
// A state tensor the optimizer creates lazily (SGD's momentum buffer: its first step copies the
// direction) that does not exist when the step is traced is created then, with a flag scalar that
// says whether it holds a value yet; the node leaves it out of the update while the flag is 0.
import { TesseraError, fmtShape } from '../core/errors.js';
import { keep } from '../core/memory.js';
import { sizeOf } from '../core/shape.js';
import { itemsize } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { ones, zeros, scalar } from '../ops/creation.js';
import { where } from '../ops/elementwise.js';
import { clone } from '../ops/shape.js';
import type { ValueInfo } from '../ops/primitives.js';
import { assignValues } from '../nn/inplace.js';
import type { BaseOptions, Optimizer, ParamGroup, ParamState } from '../optim/optimizer.js';
import { registerGraphOp } from './graph-ops.js';
import { assign } from './state.js';
import { withoutRecording, type Tracer } from './trace.js';

let skipMask: Tensor | undefined;

/**
 * Runs fn (optimizer steps inside a trace) with every traced update masked by `skip`, a boolean
 * scalar: where it is true, parameters, optimizer state and counters keep their values.
 */
export function withSkipMask<T>(skip: Tensor, fn: () => T): T {
  if (skip.dtype !== 'bool' || skip.shape.length !== 0) {
    throw new TesseraError(`withSkipMask: the mask must be a boolean scalar, got ${skip.dtype} of shape ${fmtShape(skip.shape)}.`);
  }
  const previous = skipMask;
  skipMask = skip;
  try {
    return fn();
  } finally {
    skipMask = previous;
  }
}

/** The mask of the enclosing withSkipMask, if any. */
export function activeSkipMask(): Tensor | undefined {
  return skipMask;
}

export const OPTIMIZER_PARAM_STEP_OP = 'optimizerParamStep';

export interface OptimizerParamStepAttrs {
  /** The optimizer's eager update of one parameter (Optimizer.updateParameter on its group). */
  update: (param: Tensor, grad: Tensor, st: ParamState) => void;
  /** State tensors: inputs 2.. and outputs 1.., in this order. */
  tensorNames: string[];
  /** Counters (float32 scalars): after the state tensors, in inputs and outputs. */
  counterNames: string[];
  /** State tensors that have a presence flag (float32 scalar, 0 or 1): after the counters. */
  flaggedNames: string[];
}

function scalarValue(t: Tensor): number {
  return t.item() as number;
}

/** The update on copies: [new parameter, ...new state tensors, ...new counters, ...flags (all 1)]. */
function runParamStep(inputs: readonly Tensor[], a: OptimizerParamStepAttrs): Tensor[] {
  return withoutRecording(() => noGrad(() => {
    const [param, grad] = inputs as [Tensor, Tensor];
    const nT = a.tensorNames.length, nC = a.counterNames.length;
    const states = inputs.slice(2, 2 + nT), counters = inputs.slice(2 + nT, 2 + nT + nC), flags = inputs.slice(2 + nT + nC);
    const st: ParamState = {};
    a.tensorNames.forEach((name, i) => {
      const k = a.flaggedNames.indexOf(name);
      if (k < 0 || scalarValue(flags[k]!) !== 0) st[name] = clone(states[i]!);
    });
    a.counterNames.forEach((name, i) => { st[name] = scalarValue(counters[i]!); });
    const p = clone(param);
    a.update(p, grad, st);
    const outs: Tensor[] = [p];
    for (const name of a.tensorNames) {
      const s = st[name];
      if (!(s instanceof Tensor)) {
        throw new TesseraError(`optimizerParamStep: the optimizer's update left state '${name}' without a tensor; the traced step expected one (it had one when traced).`);
      }
      outs.push(s);
    }
    for (const name of a.counterNames) {
      const v = st[name];
      outs.push(scalar(typeof v === 'number' ? v : 0, 'float32', param.backend));
    }
    for (let i = 0; i < a.flaggedNames.length; i++) outs.push(ones([], { dtype: 'float32', backend: param.backend }));
    return outs;
  }));
}

const bytes = (v: ValueInfo): number => sizeOf(v.shape) * itemsize(v.dtype);

registerGraphOp(OPTIMIZER_PARAM_STEP_OP, {
  infer: (inputs, attrs) => {
    const a = attrs as OptimizerParamStepAttrs;
    const want = 2 + a.tensorNames.length + a.counterNames.length + a.flaggedNames.length;
    if (inputs.length !== want) {
      throw new TesseraError(`optimizerParamStep: expects the parameter, its gradient, ${a.tensorNames.length} state tensor(s), ` +
        `${a.counterNames.length} counter(s) and ${a.flaggedNames.length} flag(s) (${want} inputs), got ${inputs.length}.`);
    }
    return [inputs[0]!, ...inputs.slice(2)].map((v) => ({ shape: [...v.shape], dtype: v.dtype }));
  },
  cost: (inputs, _attrs, outputs) => ({
    flops: 10 * sizeOf(inputs[0]!.shape),
    bytesRead: inputs.reduce((s, v) => s + bytes(v), 0),
    bytesWritten: outputs.reduce((s, v) => s + bytes(v), 0),
  }),
  execute: (inputs, attrs) => runParamStep(inputs, attrs as OptimizerParamStepAttrs),
});

/** A counter of a parameter's state kept in a float32 scalar (see the accessor in deviceCounter). */
interface DeviceCounter {
  tensor: Tensor;
  /** The value eager code last set (authoritative while !onDevice). */
  host: number | undefined;
  /** Whether the tensor holds the newest value (a compiled step ran since the last eager write). */
  onDevice: boolean;
}

interface DeviceState {
  counters: Map<string, DeviceCounter>;
  /** Presence flags of lazily created state tensors (float32 scalars, 0 or 1). */
  flags: Map<string, Tensor>;
}

const deviceStates = new WeakMap<ParamState, DeviceState>();

function deviceStateOf(st: ParamState): DeviceState {
  let d = deviceStates.get(st);
  if (d === undefined) deviceStates.set(st, (d = { counters: new Map(), flags: new Map() }));
  return d;
}

function newScalar(tracer: Tracer, backend: string, value: number): Tensor {
  const s = keep(withoutRecording(() => zeros([], { dtype: 'float32', backend })));
  if (value !== 0) withoutRecording(() => assignValues(s, [value]));
  tracer.liveTensors.add(s);
  return s;
}

/**
 * The device scalar behind counter `name` of `st`, made on first use: `st[name]` becomes an accessor
 * that reads the scalar after compiled steps and takes eager writes (pushed back before the next
 * compiled step by pushCounters).
 */
function deviceCounter(tracer: Tracer, st: ParamState, name: string, backend: string): DeviceCounter {
  const d = deviceStateOf(st);
  const have = d.counters.get(name);
  if (have !== undefined) {
    tracer.liveTensors.add(have.tensor);
    return have;
  }
  const initial = st[name];
  const c: DeviceCounter = { tensor: newScalar(tracer, backend, 0), host: typeof initial === 'number' ? initial : undefined, onDevice: false };
  Object.defineProperty(st, name, {
    enumerable: true,
    configurable: true,
    get: () => (c.onDevice ? scalarValue(c.tensor) : c.host),
    set: (v: number | undefined) => {
      c.host = v;
      c.onDevice = false;
    },
  });
  d.counters.set(name, c);
  return c;
}

/** Before a compiled step: counters set by eager code go to their scalars. Returns the undo. */
function pushCounters(counters: readonly DeviceCounter[]): () => void {
  const pushed: DeviceCounter[] = [];
  for (const c of counters) {
    if (c.onDevice) continue;
    withoutRecording(() => assignValues(c.tensor, [c.host ?? 0]));
    c.onDevice = true;
    pushed.push(c);
  }
  return () => { for (const c of pushed) c.onDevice = false; };
}

/** A copy of `st` for a trial update: tensors cloned, counters read (from their scalars when there). */
function copyState(st: ParamState): ParamState {
  const out: ParamState = {};
  for (const [k, v] of Object.entries(st)) if (v !== undefined) out[k] = v instanceof Tensor ? clone(v) : v;
  return out;
}

/**
 * optimizer.step() inside a trace under withSkipMask: one optimizerParamStep node per parameter with
 * a gradient, its results selected by the mask and written back (graph writes).
 */
export function maskedOptimizerStep(tracer: Tracer, opt: Optimizer<BaseOptions>, skip: Tensor): void {
  for (const group of opt.paramGroups) {
    for (const p of group.params) {
      const grad = p.grad;
      if (grad === undefined) continue;
      if (grad.shape.length !== p.shape.length || grad.shape.some((d, i) => d !== p.shape[i])) {
        throw new TesseraError(`${opt.constructor.name}.step: the gradient of a parameter has shape ${fmtShape(grad.shape)} but the parameter has ${fmtShape(p.shape)}.`);
      }
      paramStep(tracer, opt, group, p, grad, skip);
    }
  }
}

function paramStep(tracer: Tracer, opt: Optimizer<BaseOptions>, group: ParamGroup<BaseOptions>, p: Tensor, grad: Tensor, skip: Tensor): void {
  let st = opt.state.get(p);
  if (st === undefined) {
    st = {};
    opt.state.set(p, st);
  }
  const record = st;
  const update = (param: Tensor, g: Tensor, s: ParamState): void => opt.updateParameter(group, param, g, s);
  const d = deviceStateOf(st);
  // A trial update on copies says which state tensors and counters this step has after it.
  const trial = withoutRecording(() => noGrad(() => {
    const s = copyState(record);
    for (const [name, flag] of d.flags) if (scalarValue(flag) === 0) delete s[name];
    update(clone(p), grad, s);
    return s;
  }));
  const tensorNames = Object.keys(trial).filter((k) => trial[k] instanceof Tensor);
  const counterNames = Object.keys(trial).filter((k) => typeof trial[k] === 'number');
  for (const name of tensorNames) {
    if (record[name] instanceof Tensor || d.flags.has(name)) continue;
    const like = trial[name] as Tensor;
    record[name] = keep(withoutRecording(() => zeros(like.shape, { dtype: like.dtype, backend: like.backend })));
    d.flags.set(name, newScalar(tracer, p.backend, 0));
  }
  const flaggedNames = tensorNames.filter((n) => d.flags.has(n));
  for (const n of flaggedNames) tracer.liveTensors.add(d.flags.get(n)!);
  const counters = counterNames.map((n) => deviceCounter(tracer, record, n, p.backend));
  const states = tensorNames.map((n) => record[n] as Tensor);
  const hook = (): (() => void) => {
    if (opt.state.get(p) !== record || tensorNames.some((n, i) => record[n] !== states[i])) {
      throw new TesseraError(`${opt.constructor.name}.step: the optimizer's state of a parameter (shape ${fmtShape(p.shape)}) was replaced ` +
        '(loadStateDict?) after the step was compiled by jit; call reset() on the jitted function to trace it again.');
    }
    return pushCounters(counters);
  };
  hook();
  tracer.replayHooks.push(hook);
  const flags = flaggedNames.map((n) => d.flags.get(n)!);
  const inputs = [p, grad, ...states, ...counters.map((c) => c.tensor), ...flags];
  const attrs: OptimizerParamStepAttrs = { update, tensorNames, counterNames, flaggedNames };
  const outs = runParamStep(inputs, attrs);
  tracer.record(OPTIMIZER_PARAM_STEP_OP, inputs, attrs, outs);
  noGrad(() => {
    const targets = [p, ...states, ...counters.map((c) => c.tensor), ...flags];
    targets.forEach((target, i) => assign(target, where(skip, target, outs[i]!)));
  });
}
