// Control flow as ops. Eagerly, cond and whileLoop are plain JS control flow on a tensor's value.
// Under tracing they become single graph nodes holding their branch / body graphs, with switch and
// merge semantics: executing a cond runs only the taken branch (the other branch's values are dead
// and nothing computes them); a whileLoop runs its body graph while its condition graph says so.
//
// Autodiff: eagerly the taken branch is recorded on the tape like any code, so cond is
// differentiable. Under tracing with gradients needed (grad mode on and an operand, a captured
// tensor or a parameter of a branch requiring grad), the cond node's outputs get custom tape nodes
// (autodiff/node.ts recordCustom) whose vjp is itself a cond: `cond(pred, vjp of trueFn, vjp of
// falseFn)`. A backward() traced in the same function thus records one backward cond node, and
// one trace serves both predicate values. The vjp branches recompute their branch's forward (no
// branch intermediates are kept). Only when a branch closes over a non-leaf tensor that requires
// grad (its gradient would have to flow into the enclosing tape) does cond fall back to inlining
// the taken branch and guarding on the predicate (a flip traces again).
//
// Random draws (dropout, rand) inside branches and bodies are graph nodes that draw when their
// branch or iteration runs, so a replay takes the numbers eager code would. Tracing runs both
// branches (and condFn/bodyFn once) speculatively: the generators are restored around those runs.
// A differentiable cond whose branch draws is inlined instead (its backward cond would recompute
// the branch and draw a different mask).
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { enableGrad, isGradEnabled, noGrad } from '../autodiff/mode.js';
import { gradientsOf } from '../autodiff/backward.js';
import { recordCustom } from '../autodiff/node.js';
import { isFloating } from '../core/dtype.js';
import { zerosLike } from '../ops/creation.js';
import { mul } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { detach } from '../ops/shape.js';
import type { Cost, ValueInfo } from '../ops/primitives.js';
import { Graph } from './graph.js';
import { graphDrawsRandom, opDef, registerGraphOp } from './graph-ops.js';
import { snapshotGenerators } from '../core/random.js';
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
  if (tracer === undefined) return taken ? trueFn(...operands) : falseFn(...operands);
  const gradMode = isGradEnabled();
  // Tracing runs both branches, but an eager cond draws random numbers only in the taken one:
  // each branch starts from the generators' state before the cond, and the state after the taken
  // branch is the one kept.
  const before = snapshotGenerators();
  // Branches are traced without a tape: their gradients come from the custom nodes below.
  const t = noGrad(() => traceBranch(trueFn, operands));
  const afterTrue = snapshotGenerators();
  before.restore();
  const f = noGrad(() => traceBranch(falseFn, operands));
  const afterFalse = snapshotGenerators();
  before.restore();
  checkSameTypes('cond', t.outputs, f.outputs, 'the branches\' results');
  const targets = gradMode ? gradTargets(operands, [t, f]) : { operandIdx: [], leaves: [], inlineReason: undefined };
  if (targets.inlineReason !== undefined) {
    tracer.recordRead(pred, untracedRead(() => pred.data()));
    return taken ? trueFn(...operands) : falseFn(...operands);
  }
  (taken ? afterTrue : afterFalse).restore();
  const outs = (taken ? t.outputs : f.outputs).map(alias);
  const attrs: CondAttrs = { trueGraph: t.graph, falseGraph: f.graph, operands: operands.length, trueCaptures: t.captures.length };
  tracer.record('cond', [pred, ...operands, ...t.captures, ...f.captures], attrs, outs);
  for (const leaf of targets.leaves) tracer.nestedGradLeaves.add(leaf);
  if (targets.operandIdx.length + targets.leaves.length > 0) recordCondGrads(pred, trueFn, falseFn, operands, targets, outs);
  return unflattenTensors((taken ? t.template : f.template) as R, outs);
}

interface GradTargets {
  /** Operands that require grad (indices into operands). */
  operandIdx: number[];
  /** Leaf tensors requiring grad that a branch uses without receiving them (parameters, captured inputs). */
  leaves: Tensor[];
  /** Set when cond cannot be a differentiable node and must inline the taken branch instead. */
  inlineReason: string | undefined;
}

function gradTargets(operands: readonly Tensor[], branches: readonly Branch[]): GradTargets {
  const operandIdx = operands.flatMap((o, i) => (o.requiresGrad ? [i] : []));
  const leaves: Tensor[] = [];
  for (const b of branches) {
    for (const c of [...b.captures, ...b.graph.parameters.values()]) {
      if (!c.requiresGrad || operands.includes(c) || leaves.includes(c)) continue;
      if (c.gradNode !== undefined) return { operandIdx, leaves, inlineReason: 'a branch closes over a computed tensor that requires grad' };
      leaves.push(c);
    }
  }
  // The backward cond recomputes its branch's forward: a branch that draws (dropout) would draw
  // a new mask there, so its gradient would not belong to the forward values.
  if (operandIdx.length + leaves.length > 0 && branches.some((b) => graphDrawsRandom(b.graph))) {
    return { operandIdx, leaves, inlineReason: 'a branch draws random numbers' };
  }
  return { operandIdx, leaves, inlineReason: undefined };
}

/**
 * Gives each floating output of a traced cond a custom tape node whose vjp is a cond of the two
 * branches' vjps: the backward of the cond is again one graph node, chosen by the same predicate.
 */
function recordCondGrads(pred: Tensor, trueFn: (...xs: Tensor[]) => unknown, falseFn: (...xs: Tensor[]) => unknown,
  operands: readonly Tensor[], targets: GradTargets, outs: readonly Tensor[]): void {
  const inputs = [...targets.operandIdx.map((i) => operands[i]!), ...targets.leaves];
  const n = operands.length;
  outs.forEach((out, k) => {
    if (!isFloating(out.dtype)) return;
    // vjp branch: args = [...operands, cotangent of output k] -> gradients of `inputs`.
    // With createGraph (grad mode on while backward runs) the gradients must stay differentiable
    // with respect to the operands themselves, so they are not detached then.
    const branchVjp = (fn: (...xs: Tensor[]) => unknown, higher: boolean) => (...args: Tensor[]): Tensor[] => enableGrad(() => {
      const xs = args.slice(0, n).map((a, i) => {
        if (higher || !targets.operandIdx.includes(i)) return a;
        const x = detach(a);
        x.requiresGrad = true;
        return x;
      });
      const y = flattenTensors(fn(...xs))[k]!;
      const wrt = [...targets.operandIdx.map((i) => xs[i]!), ...targets.leaves];
      const gs = y.requiresGrad ? gradientsOf(sum(mul(y, args[n]!)), wrt, undefined, { createGraph: higher }) : [];
      return wrt.map((w, i) => gs[i] ?? zerosLike(w));
    });
    recordCustom('cond', inputs, out, (g) => {
      const higher = isGradEnabled();
      return cond(pred, branchVjp(trueFn, higher), branchVjp(falseFn, higher), [...operands, g]);
    });
  });
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
  // Tracing runs condFn and bodyFn once each on the initial state; the loop below runs them for
  // real, so the tracing runs' random draws are undone.
  const generators = snapshotGenerators();
  const c = traceBranch(condFn, init);
  if (c.outputs.length !== 1) throw new TesseraError('whileLoop: condFn must return one tensor.');
  const b = traceBranch((...s: Tensor[]) => bodyFn(...s), init);
  generators.restore();
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
