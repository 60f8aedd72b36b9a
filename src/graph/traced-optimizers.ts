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
// The momentum terms a scheduler may cycle (OneCycleLR: Adam's beta1, SGD's momentum) are live the
// same way. Hyper-parameters baked into the graph (eps, weight decay, nesterov, ...) are checked by
// the hook, which throws when they changed after tracing.
//
// A float32 parameter on a backend with a fused update kernel (Backend.optimizerUpdate: wasm) gets
// its whole update as ONE `optimizerUpdate` node instead (optimizer-update-op.ts): the same rule the
// eager step hands that kernel, its per-step numbers refreshed by the same kind of replay hook, so
// a jitted step gives the eager step's bits and a compiled replay runs one pass per parameter. This
// path also serves RMSprop and Adagrad. Everything else (the cpu backend, float64) is unchanged.
//
// Under a traced GradScaler's step (withSkipMask, masked-optimizer-step.ts) every optimizer takes
// another path instead: its own eager update as one node per parameter, selected by the skip mask.
import { TesseraError, fmtShape } from '../core/errors.js';
import { keep } from '../core/memory.js';
import { Tensor } from '../core/tensor.js';
import { noGrad } from '../autodiff/mode.js';
import { zeros } from '../ops/creation.js';
import { add, gt, maximum, mul, neg, sqrt, sub, div, where } from '../ops/elementwise.js';
import { assignValues } from '../nn/inplace.js';
import { setTracedStepHandler, type BaseOptions, type Optimizer, type ParamState } from '../optim/optimizer.js';
import { SGD, type SgdOptions } from '../optim/sgd.js';
import { Adam, AdamW, type AdamOptions } from '../optim/adam.js';
import { RMSprop, type RmspropOptions } from '../optim/rmsprop.js';
import { Adagrad, type AdagradOptions } from '../optim/adagrad.js';
import type { OptimizerRule } from '../backend/backend.js';
import { assign } from './state.js';
import { OPTIMIZER_UPDATE_OP, runOptimizerUpdateOnCopies, type OptimizerRuleCell, type OptimizerUpdateAttrs } from './optimizer-update-op.js';
import { activeTracer, withoutRecording, type Tracer } from './trace.js';
import { activeSkipMask, maskedOptimizerStep } from './masked-optimizer-step.js';

/** A live scalar of the parameter's dtype and backend, refreshed by a replay hook. */
function liveScalar(tracer: Tracer, like: Tensor): Tensor {
  const s = keep(withoutRecording(() => zeros([], { dtype: like.dtype, backend: like.backend })));
  tracer.liveTensors.add(s);
  return s;
}

function setScalar(s: Tensor, v: number): void {
  withoutRecording(() => assignValues(s, [v]));
}

function stateTensor(st: ParamState, name: string, p: Tensor, initial = 0): Tensor {
  const have = st[name];
  if (have instanceof Tensor) return have;
  const t = keep(withoutRecording(() => zeros(p.shape, { dtype: p.dtype, backend: p.backend })));
  if (initial !== 0) withoutRecording(() => assignValues(t, new Float64Array(t.size).fill(initial)));
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

/** Equal numbers (NaN equal to NaN) or booleans, or arrays of such. */
function sameHyper(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameHyper(x, b[i]));
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/**
 * Throws when a hyper-parameter baked into a compiled step changed after tracing. Runs before
 * every replay for every parameter, so it compares values directly; arrays (betas) are baked as
 * copies, so a change made in place is caught too.
 */
function checkBaked(who: string, group: Record<string, unknown>, baked: Record<string, unknown>): void {
  // SGD's momentum is live, but whether there is one decides the graph (a momentum buffer or none).
  if ('hasMomentum' in baked && (group.momentum !== 0) !== baked.hasMomentum) {
    throw new TesseraError(`${who}.step: momentum changed between zero and non-zero (${String(group.momentum)}) after the step was compiled by jit; ` +
      'the compiled step has ' + (baked.hasMomentum ? 'a' : 'no') + ' momentum buffer. Call reset() on the jitted function to trace it again.');
  }
  for (const k in baked) {
    if (k === 'hasMomentum') continue;
    if (!sameHyper(baked[k], group[k])) {
      throw new TesseraError(`${who}.step: '${k}' changed from ${JSON.stringify(baked[k])} to ${JSON.stringify(group[k])} after the step was compiled by jit; ` +
        'only lr and the momentum terms (betas, momentum) may change between calls of a compiled step. Call reset() on the jitted function to trace it again.');
    }
  }
}

/** Whether `p`'s update can be one fused node: a float32 parameter of a backend with an update kernel. */
function hasFusedUpdate(p: Tensor): boolean {
  return p.dtype === 'float32' && p.storage.backend.optimizerUpdate !== undefined;
}

/** This step's rule, with the JS state advanced as an eager step would, and how to undo that. */
type NextRule = () => { rule: OptimizerRule; undo: () => void };

/**
 * Records `p`'s update as one optimizerUpdate node over its gradient and the state tensors
 * `stateNames` (created with `initial` if missing), writes its outputs back (graph writes, so the
 * compiled step updates the live tensors and later reads in the trace see the new values), and
 * registers the hook that refreshes the node's rule before every replay.
 */
function fusedStep(tracer: Tracer, who: string, group: object, baked: Record<string, unknown>, p: Tensor, st: ParamState,
  stateNames: string[], nextRule: NextRule, initial = 0): void {
  const states = stateNames.map((n) => stateTensor(st, n, p, initial));
  const checkedRule: NextRule = () => {
    checkBaked(who, group as Record<string, unknown>, baked);
    return nextRule();
  };
  const cell: OptimizerRuleCell = { rule: checkedRule().rule };
  tracer.replayHooks.push(() => {
    const { rule, undo } = checkedRule();
    cell.rule = rule;
    return undo;
  });
  const attrs: OptimizerUpdateAttrs = { cell, stateNames };
  const inputs = [p, p.grad!, ...states];
  // The trace itself runs the kernel (on copies) so its step gives the eager step's values.
  const outs = runOptimizerUpdateOnCopies(inputs, attrs);
  tracer.record(OPTIMIZER_UPDATE_OP, inputs, attrs, outs);
  noGrad(() => {
    assign(p, outs[0]!);
    states.forEach((s, i) => assign(s, outs[i + 1]!));
  });
}

/** A replay hook's step-counter advance: st.step + 1, undone by restoring the previous value. */
function advanceStep(st: ParamState): { step: number; undo: () => void } {
  const before = st.step;
  const step = (typeof before === 'number' ? before : 0) + 1;
  st.step = step;
  return {
    step,
    undo: () => {
      if (before === undefined) delete st.step;
      else st.step = before;
    },
  };
}

function sgdStep(tracer: Tracer, opt: SGD): void {
  for (const g of opt.paramGroups as (SgdOptions & { params: Tensor[] })[]) {
    const baked = { hasMomentum: g.momentum !== 0, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov, maximize: g.maximize };
    for (const p of g.params) {
      const grad = p.grad;
      if (grad === undefined) continue;
      const st = stateOf(opt as unknown as Optimizer<BaseOptions>, p);
      if (hasFusedUpdate(p)) {
        // As the eager step: the first step with momentum overwrites the (new) buffer with the direction.
        let isInitialized = st.momentumBuffer instanceof Tensor;
        const rule: NextRule = () => {
          const before = isInitialized;
          isInitialized = true;
          return {
            rule: { kind: 'sgd', lr: g.lr, momentum: g.momentum, dampening: g.dampening, weightDecay: g.weightDecay, nesterov: g.nesterov, maximize: g.maximize, firstStep: g.momentum !== 0 && !before },
            undo: () => { isInitialized = before; },
          };
        };
        fusedStep(tracer, 'SGD', g, baked, p, st, g.momentum !== 0 ? ['momentumBuffer'] : [], rule);
        continue;
      }
      const lr = liveScalar(tracer, p);
      const initialized = g.momentum !== 0 ? liveScalar(tracer, p) : undefined;
      const momentum = g.momentum !== 0 ? liveScalar(tracer, p) : undefined;
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
        if (momentum !== undefined) setScalar(momentum, g.momentum);
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
          const next = where(gt(initialized!, 0), add(mul(momentumBuffer, momentum!), mul(d, 1 - g.dampening)), d);
          assign(momentumBuffer, next);
          d = g.nesterov ? add(d, mul(next, momentum!)) : next;
        }
        assign(p, sub(p, mul(d, lr)));
      });
    }
  }
}

function adamStep(tracer: Tracer, opt: Adam): void {
  const decoupled = opt instanceof AdamW;
  for (const g of opt.paramGroups as (AdamOptions & { params: Tensor[] })[]) {
    const baked = { eps: g.eps, weightDecay: g.weightDecay, amsgrad: g.amsgrad, maximize: g.maximize };
    for (const p of g.params) {
      const grad = p.grad;
      if (grad === undefined) continue;
      const st = stateOf(opt as unknown as Optimizer<BaseOptions>, p);
      if (hasFusedUpdate(p)) {
        // The scalars of Adam.fusedRule (src/optim/adam.ts), computed the same way.
        const rule: NextRule = () => {
          const { step, undo } = advanceStep(st);
          const [b1, b2] = g.betas;
          return {
            rule: {
              kind: 'adam', stepSize: g.lr / (1 - b1 ** step), biasCorrection2Sqrt: Math.sqrt(1 - b2 ** step),
              decay: decoupled ? 1 - g.lr * g.weightDecay : 1, weightDecay: decoupled ? 0 : g.weightDecay,
              beta1: b1, beta2: b2, eps: g.eps, amsgrad: g.amsgrad, maximize: g.maximize,
            },
            undo,
          };
        };
        fusedStep(tracer, decoupled ? 'AdamW' : 'Adam', g, baked, p, st, ['expAvg', 'expAvgSq', ...(g.amsgrad ? ['maxExpAvgSq'] : [])], rule);
        continue;
      }
      const m = stateTensor(st, 'expAvg', p), v = stateTensor(st, 'expAvgSq', p);
      const vmax = g.amsgrad ? stateTensor(st, 'maxExpAvgSq', p) : undefined;
      // Live scalars: lr / (1 - b1^t), sqrt(1 - b2^t), the decoupled decay factor 1 - lr * wd, and
      // the moments' factors 1 - b1, b2 and 1 - b2.
      const stepSize = liveScalar(tracer, p), bc2Sqrt = liveScalar(tracer, p), decay = liveScalar(tracer, p);
      const oneMinusB1 = liveScalar(tracer, p), b2Live = liveScalar(tracer, p), oneMinusB2 = liveScalar(tracer, p);
      const hook = (): (() => void) => {
        checkBaked(decoupled ? 'AdamW' : 'Adam', g as unknown as Record<string, unknown>, baked);
        const before = st.step;
        const step = (typeof before === 'number' ? before : 0) + 1;
        st.step = step;
        const [b1, b2] = g.betas;
        setScalar(oneMinusB1, 1 - b1);
        setScalar(b2Live, b2);
        setScalar(oneMinusB2, 1 - b2);
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
        const mNext = add(m, mul(sub(gi, m), oneMinusB1));
        const vNext = add(mul(v, b2Live), mul(mul(gi, gi), oneMinusB2));
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

/** Throws for a parameter RMSprop/Adagrad cannot trace (they have only the fused node). */
function requireFused(who: string, p: Tensor): void {
  if (!hasFusedUpdate(p)) {
    throw new TesseraError(`${who}.step inside a traced (jit) function: a ${p.dtype} parameter of shape ${fmtShape(p.shape)} on backend '${p.backend}' ` +
      `has no fused update kernel, and ${who} has no op-by-op traced update; call step() outside the jitted function, ` +
      'use float32 parameters on the wasm backend, or use SGD, Adam or AdamW.');
  }
}

function rmspropStep(tracer: Tracer, opt: RMSprop): void {
  for (const g of opt.paramGroups as (RmspropOptions & { params: Tensor[] })[]) {
    const baked = { alpha: g.alpha, eps: g.eps, weightDecay: g.weightDecay, momentum: g.momentum, centered: g.centered, maximize: g.maximize };
    for (const p of g.params) {
      if (p.grad === undefined) continue;
      requireFused('RMSprop', p);
      const st = stateOf(opt as unknown as Optimizer<BaseOptions>, p);
      // RMSprop.fusedRule: the step counter advances; the rule itself has no per-step scalar but lr.
      const rule: NextRule = () => ({
        rule: { kind: 'rmsprop', lr: g.lr, alpha: g.alpha, eps: g.eps, weightDecay: g.weightDecay, momentum: g.momentum, centered: g.centered, maximize: g.maximize },
        undo: advanceStep(st).undo,
      });
      const names = ['squareAvg', ...(g.momentum > 0 ? ['momentumBuffer'] : []), ...(g.centered ? ['gradAvg'] : [])];
      fusedStep(tracer, 'RMSprop', g, baked, p, st, names, rule);
    }
  }
}

function adagradStep(tracer: Tracer, opt: Adagrad): void {
  for (const g of opt.paramGroups as (AdagradOptions & { params: Tensor[] })[]) {
    const baked = { lrDecay: g.lrDecay, weightDecay: g.weightDecay, initialAccumulatorValue: g.initialAccumulatorValue, eps: g.eps, maximize: g.maximize };
    for (const p of g.params) {
      if (p.grad === undefined) continue;
      requireFused('Adagrad', p);
      const st = stateOf(opt as unknown as Optimizer<BaseOptions>, p);
      // Adagrad.fusedRule: this step's decayed learning rate.
      const rule: NextRule = () => {
        const { step, undo } = advanceStep(st);
        return { rule: { kind: 'adagrad', lr: g.lr / (1 + (step - 1) * g.lrDecay), weightDecay: g.weightDecay, eps: g.eps, maximize: g.maximize }, undo };
      };
      fusedStep(tracer, 'Adagrad', g, baked, p, st, ['sum'], rule, g.initialAccumulatorValue);
    }
  }
}

/** step() of an optimizer while a trace is active; false (not handled) when no trace is. */
export function tracedOptimizerStep(opt: Optimizer<BaseOptions>): boolean {
  const tracer = activeTracer();
  if (tracer === undefined) return false;
  // Under a traced GradScaler's step: any optimizer, its own update, selected by the skip mask.
  const skip = activeSkipMask();
  if (skip !== undefined) maskedOptimizerStep(tracer, opt, skip);
  else if (opt instanceof SGD) sgdStep(tracer, opt);
  else if (opt instanceof Adam) adamStep(tracer, opt);
  else if (opt instanceof RMSprop) rmspropStep(tracer, opt);
  else if (opt instanceof Adagrad) adagradStep(tracer, opt);
  else {
    throw new TesseraError(`${opt.constructor.name}.step inside a traced (jit) function: only SGD, Adam, AdamW (and on backends with a fused ` +
      'update kernel, RMSprop and Adagrad) have a traceable update so far; call step() outside the jitted function, or use one of those optimizers.');
  }
  return true;
}

setTracedStepHandler(tracedOptimizerStep);
