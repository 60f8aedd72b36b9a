// Optimizer steps inside a trace. The optimizers in src/optim update parameters element by element
// on plain arrays, which a tracer cannot see. While a trace is active, step() comes here instead
// (setTracedStepHandler) and the same update is written with ops and `assign`, so a jitted
// training step (forward, backward, optimizer.step()) compiles into one graph.
//
// The state tensors (momentum buffers, Adam's moments) are the optimizer's own state entries, so
// eager and traced steps can alternate. What lives in JS (the step counter, the learning rate a
// scheduler may change) cannot be baked into the graph: it is kept in small live scalar tensors
// that a replay hook refreshes from the optimizer's JS state before every run of the compiled step
// (Tracer.replayHooks); the hook also advances the counters, exactly as an eager step would.
// Hyper-parameters baked into the graph (betas, eps, weight decay, momentum, ...) are checked by
// the hook, which throws when they changed after tracing.
import { TesseraError } from '../core/errors.js';
import { keep } from '../core/memory.js';
import { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { zeros } from '../ops/creation.js';
import { add, gt, maximum, mul, neg, sqrt, sub, div, where } from '../ops/elementwise.js';
import { assignValues } from '../nn/inplace.js';
import { setTracedStepHandler, type BaseOptions, type Optimizer, type ParamState } from '../optim/optimizer.js';
import { SGD, type SgdOptions } from '../optim/sgd.js';
import { Adam, AdamW, type AdamOptions } from '../optim/adam.js';
import { assign } from './state.js';
import { activeTracer, withoutRecording, type Tracer } from './trace.js';

/** A live scalar of the parameter's dtype and backend, refreshed by a replay hook. */
function liveScalar(tracer: Tracer, like: Tensor): Tensor {
  const s = keep(withoutRecording(() => zeros([], { dtype: like.dtype, backend: like.backend })));
  tracer.liveTensors.add(s);
  return s;
}

function setScalar(s: Tensor, v: number): void {
  withoutRecording(() => assignValues(s, [v]));
}

function stateTensor(st: ParamState, name: string, p: Tensor): Tensor {
  const have = st[name];
  if (have instanceof Tensor) return have;
  const t = keep(withoutRecording(() => zeros(p.shape, { dtype: p.dtype, backend: p.backend })));
  st[name] = t;
  return t;
}

function stateOf(opt: Optimizer<BaseOptions>, p: Tensor): ParamState {
  let st = opt.state.get(p);
  if (st === undefined) {
    st = {};
    opt.state.set(p, st);
  }
  return st;
}

/** Throws when a hyper-parameter baked into a compiled step changed after tracing. */
function checkBaked(who: string, group: Record<string, unknown>, baked: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(baked)) {
    if (JSON.stringify(group[k]) !== JSON.stringify(v)) {
      throw new TesseraError(`${who}.step: '${k}' changed from ${JSON.stringify(v)} to ${JSON.stringify(group[k])} after the step was compiled by jit; ` +
        'only lr may change between calls of a compiled step. Call reset() on the jitted function to trace it again.');
    }
  }
}

function sgdStep(tracer: Tracer, opt: SGD): void {
  for (const g of opt.paramGroups as (SgdOptions & { params: Tensor[] })[]) {
    const baked = { momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov, maximize: g.maximize };
    for (const p of g.params) {
      const grad = p.grad;
      if (grad === undefined) continue;
      const st = stateOf(opt as unknown as Optimizer<BaseOptions>, p);
      const lr = liveScalar(tracer, p);
      const initialized = g.momentum !== 0 ? liveScalar(tracer, p) : undefined;
      const buf = g.momentum !== 0 ? st.momentumBuffer : undefined;
      const hadBuffer = buf instanceof Tensor;
      const momentumBuffer = g.momentum !== 0 ? stateTensor(st, 'momentumBuffer', p) : undefined;
      // Eagerly the first step copies the direction into a fresh buffer; here the buffer exists
      // from the start and a live flag says whether it holds a previous step's value.
      let isInitialized = hadBuffer;
      const hook = (): (() => void) => {
        checkBaked('SGD', g as unknown as Record<string, unknown>, baked);
        setScalar(lr, g.lr);
        if (initialized !== undefined) setScalar(initialized, isInitialized ? 1 : 0);
        const before = isInitialized;
        isInitialized = true;
        return () => { isInitialized = before; };
      };
      hook();
      tracer.replayHooks.push(hook);
      noGrad(() => {
        let d = g.maximize ? neg(grad) : grad;
        if (g.weightDecay !== 0) d = add(d, mul(p, g.weightDecay));
        if (momentumBuffer !== undefined) {
          const next = where(gt(initialized!, 0), add(mul(momentumBuffer, g.momentum), mul(d, 1 - g.dampening)), d);
          assign(momentumBuffer, next);
          d = g.nesterov ? add(d, mul(next, g.momentum)) : next;
        }
        assign(p, sub(p, mul(d, lr)));
      });
    }
  }
}

function adamStep(tracer: Tracer, opt: Adam): void {
  const decoupled = opt instanceof AdamW;
  for (const g of opt.paramGroups as (AdamOptions & { params: Tensor[] })[]) {
    const baked = { betas: g.betas, eps: g.eps, weightDecay: g.weightDecay, amsgrad: g.amsgrad, maximize: g.maximize };
    const [b1, b2] = g.betas;
    for (const p of g.params) {
      const grad = p.grad;
      if (grad === undefined) continue;
      const st = stateOf(opt as unknown as Optimizer<BaseOptions>, p);
      const m = stateTensor(st, 'expAvg', p), v = stateTensor(st, 'expAvgSq', p);
      const vmax = g.amsgrad ? stateTensor(st, 'maxExpAvgSq', p) : undefined;
      // Live scalars: lr / (1 - b1^t), sqrt(1 - b2^t) and the decoupled decay factor 1 - lr * wd.
      const stepSize = liveScalar(tracer, p), bc2Sqrt = liveScalar(tracer, p), decay = liveScalar(tracer, p);
      const hook = (): (() => void) => {
        checkBaked(decoupled ? 'AdamW' : 'Adam', g as unknown as Record<string, unknown>, baked);
        const before = st.step;
        const step = (typeof before === 'number' ? before : 0) + 1;
        st.step = step;
        setScalar(stepSize, g.lr / (1 - b1 ** step));
        setScalar(bc2Sqrt, Math.sqrt(1 - b2 ** step));
        setScalar(decay, decoupled ? 1 - g.lr * g.weightDecay : 1);
        return () => {
          if (before === undefined) delete st.step;
          else st.step = before;
        };
      };
      hook();
      tracer.replayHooks.push(hook);
      noGrad(() => {
        let gi = g.maximize ? neg(grad) : grad;
        const pd = decoupled ? mul(p, decay) : p;
        if (!decoupled && g.weightDecay !== 0) gi = add(gi, mul(pd, g.weightDecay));
        const mNext = add(m, mul(sub(gi, m), 1 - b1));
        const vNext = add(mul(v, b2), mul(mul(gi, gi), 1 - b2));
        assign(m, mNext);
        assign(v, vNext);
        let second = vNext;
        if (vmax !== undefined) {
          second = maximum(vmax, vNext);
          assign(vmax, second);
        }
        const denom = add(div(sqrt(second), bc2Sqrt), g.eps);
        assign(p, sub(pd, mul(stepSize, div(mNext, denom))));
      });
    }
  }
}

/** step() of an optimizer while a trace is active; false (not handled) when no trace is. */
export function tracedOptimizerStep(opt: Optimizer<BaseOptions>): boolean {
  const tracer = activeTracer();
  if (tracer === undefined) return false;
  if (opt instanceof SGD) sgdStep(tracer, opt);
  else if (opt instanceof Adam) adamStep(tracer, opt);
  else {
    throw new TesseraError(`${opt.constructor.name}.step inside a traced (jit) function: only SGD, Adam and AdamW have a traceable update so far; ` +
      'call step() outside the jitted function, or use one of those optimizers.');
  }
  return true;
}

setTracedStepHandler(tracedOptimizerStep);
