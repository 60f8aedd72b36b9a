// Control flow as ops. Eagerly, cond and whileLoop are plain JS control flow on a tensor's value.
// Under tracing they become single graph nodes holding their branch / body graphs, with switch and
// merge semantics: executing a cond runs only the taken branch (the other branch's values are dead
// and nothing computes them); a whileLoop runs its body graph while its condition graph says so.
//
// Autodiff: eagerly the taken branch is recorded on the tape like any code, so cond is
// differentiable. Under tracing with gradients needed (grad mode on and an operand requiring grad),
// the tape has no place for a graph node (the core's tape only holds primitives; see
// docs/compiler.md), so cond inlines the taken branch into the trace and guards on the predicate:
// the backward graph is that branch's, and a call where the predicate flips traces again.
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { isGradEnabled } from '../autodiff/mode.js';
import type { Cost, ValueInfo } from '../ops/primitives.js';
import { Graph } from './graph.js';
import { opDef, registerGraphOp } from './graph-ops.js';
import { interpret } from './interpret.js';
import { activeTracer, finishWithGrads, flattenTensors, unflattenTensors, untracedRead, withTracer, withoutRecording } from './trace.js';

function truthy(pred: Tensor, who: string): boolean {
  if (pred.size !== 1) throw new TesseraError(`${who}: the predicate must have one element, got shape ${fmtShape(pred.shape)}.`);
  return untracedRead(() => pred.data()[0]) !== 0;
}

/** A tensor object over the same memory (the graph's name for a control-flow op's output). */
function alias(t: Tensor): Tensor {
  return new Tensor(t.storage, t.shape, t.strides, t.offset, t.dtype);
}

interface Branch {
  graph: Graph;
  captures: Tensor[];
  outputs: Tensor[];
  template: unknown;
}

function traceBranch(fn: (...xs: Tensor[]) => unknown, operands: readonly Tensor[]): Branch {
  const { tracer, result } = withTracer(operands, {}, () => fn(...operands));
  const outs = flattenTensors(result);
  const { graph, captures } = finishWithGrads(tracer, outs);
  if (graph.writes.length > 0) throw new TesseraError('cond/whileLoop: branch and body functions must not assign or run backward (no side effects).');
  return { graph, captures, outputs: outs, template: result };
}

function checkSameTypes(who: string, a: readonly ValueInfo[], b: readonly ValueInfo[], what: string): void {
  const show = (xs: readonly ValueInfo[]): string => xs.map((x) => `${fmtShape(x.shape)} ${x.dtype}`).join(', ');
  if (a.length !== b.length || a.some((x, i) => !shapesEqual(x.shape, b[i]!.shape) || x.dtype !== b[i]!.dtype)) {
    throw new TesseraError(`${who}: ${what} differ: (${show(a)}) vs (${show(b)}); make them return tensors of the same shapes and dtypes.`);
  }
}

export interface CondAttrs {
  trueGraph: Graph;
  falseGraph: Graph;
  operands: number;
  trueCaptures: number;
}

/**
 * `pred ? trueFn(...operands) : falseFn(...operands)` for a one-element tensor `pred`. Both
 * functions must return the same structure of tensors with equal shapes and dtypes.
 */
export function cond<R>(pred: Tensor, trueFn: (...operands: Tensor[]) => R, falseFn: (...operands: Tensor[]) => R, operands: readonly Tensor[] = []): R {
  const taken = truthy(pred, 'cond');
  const tracer = activeTracer();
  const needsGrad = isGradEnabled() && operands.some((o) => o.requiresGrad);
  if (tracer === undefined) return taken ? trueFn(...operands) : falseFn(...operands);
  if (needsGrad) {
    tracer.recordRead(pred, untracedRead(() => pred.data()));
    return taken ? trueFn(...operands) : falseFn(...operands);
  }
  const t = traceBranch(trueFn, operands);
  const f = traceBranch(falseFn, operands);
  checkSameTypes('cond', t.outputs, f.outputs, 'the branches\' results');
  const outs = (taken ? t.outputs : f.outputs).map(alias);
  const attrs: CondAttrs = { trueGraph: t.graph, falseGraph: f.graph, operands: operands.length, trueCaptures: t.captures.length };
  tracer.record('cond', [pred, ...operands, ...t.captures, ...f.captures], attrs, outs);
  return unflattenTensors((taken ? t.template : f.template) as R, outs);
}

export interface WhileAttrs {
  condGraph: Graph;
  bodyGraph: Graph;
  state: number;
  condCaptures: number;
  /** Stops a runaway loop with an error instead of hanging. */
  maxIterations: number;
}

export interface WhileOptions {
  /** Upper bound on iterations (default 1e6); exceeding it is an error. */
  maxIterations?: number;
}

/**
 * `while (condFn(...state)) state = bodyFn(...state)` over a list of tensors; bodyFn returns the
 * next state with the same shapes and dtypes. Returns the final state.
 */
export function whileLoop(condFn: (...state: Tensor[]) => Tensor, bodyFn: (...state: Tensor[]) => Tensor[], init: readonly Tensor[], opts: WhileOptions = {}): Tensor[] {
  const maxIterations = opts.maxIterations ?? 1e6;
  const tracer = activeTracer();
  if (tracer === undefined || (isGradEnabled() && init.some((x) => x.requiresGrad))) {
    let state = [...init];
    for (let i = 0; ; i++) {
      const c = condFn(...state);
      if (tracer !== undefined) tracer.recordRead(c, untracedRead(() => c.data()));
      if (!truthy(c, 'whileLoop')) return state;
      if (i >= maxIterations) throw new TesseraError(`whileLoop: still running after ${maxIterations} iterations; raise maxIterations or check the condition.`);
      const next = bodyFn(...state);
      checkSameTypes('whileLoop', state, next, 'the state and the body\'s result');
      state = next;
    }
  }
  const c = traceBranch(condFn, init);
  if (c.outputs.length !== 1) throw new TesseraError('whileLoop: condFn must return one tensor.');
  const b = traceBranch((...s: Tensor[]) => bodyFn(...s), init);
  checkSameTypes('whileLoop', init, b.outputs, 'the state and the body\'s result');
  const attrs: WhileAttrs = { condGraph: c.graph, bodyGraph: b.graph, state: init.length, condCaptures: c.captures.length, maxIterations };
  const inputs = [...init, ...c.captures, ...b.captures];
  const final = withoutRecording(() => runWhile(inputs, attrs));
  const outs = final.map(alias);
  tracer.record('whileLoop', inputs, attrs, outs);
  return outs;
}

function runWhile(inputs: readonly Tensor[], a: WhileAttrs): Tensor[] {
  let state = inputs.slice(0, a.state);
  const condCaps = inputs.slice(a.state, a.state + a.condCaptures);
  const bodyCaps = inputs.slice(a.state + a.condCaptures);
  for (let i = 0; ; i++) {
    const [c] = interpret(a.condGraph, [...state, ...condCaps], { applyWrites: false });
    if (!truthy(c!, 'whileLoop')) return state;
    if (i >= a.maxIterations) throw new TesseraError(`whileLoop: still running after ${a.maxIterations} iterations; raise maxIterations or check the condition.`);
    state = interpret(a.bodyGraph, [...state, ...bodyCaps], { applyWrites: false });
  }
}

function graphCost(g: Graph): Cost {
  const total: Cost = { flops: 0, bytesRead: 0, bytesWritten: 0 };
  for (const n of g.nodes) {
    const c = opDef(n.op).cost(n.inputs.map((v) => g.value(v)), n.attrs, n.outputs.map((v) => g.value(v)));
    total.flops += c.flops;
    total.bytesRead += c.bytesRead;
    total.bytesWritten += c.bytesWritten;
  }
  return total;
}

registerGraphOp('cond', {
  infer: (inputs, attrs) => {
    const a = attrs as CondAttrs;
    if (inputs[0]!.shape.reduce((p, d) => p * d, 1) !== 1) throw new TesseraError('cond: the predicate must have one element.');
    return a.trueGraph.outputs.map((o) => a.trueGraph.value(o));
  },
  cost: (_inputs, attrs) => {
    // The more expensive branch bounds the cost (only one runs).
    const a = attrs as CondAttrs;
    const t = graphCost(a.trueGraph), f = graphCost(a.falseGraph);
    return t.flops >= f.flops ? t : f;
  },
  execute: (inputs, attrs) => {
    const a = attrs as CondAttrs;
    const operands = inputs.slice(1, 1 + a.operands);
    const tc = inputs.slice(1 + a.operands, 1 + a.operands + a.trueCaptures);
    const fc = inputs.slice(1 + a.operands + a.trueCaptures);
    return truthy(inputs[0]!, 'cond')
      ? interpret(a.trueGraph, [...operands, ...tc], { applyWrites: false })
      : interpret(a.falseGraph, [...operands, ...fc], { applyWrites: false });
  },
});

registerGraphOp('whileLoop', {
  infer: (inputs, attrs) => inputs.slice(0, (attrs as WhileAttrs).state).map((v) => ({ shape: [...v.shape], dtype: v.dtype })),
  cost: (_inputs, attrs) => graphCost((attrs as WhileAttrs).bodyGraph),
  execute: (inputs, attrs) => runWhile(inputs, attrs as WhileAttrs),
});
