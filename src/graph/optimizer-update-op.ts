// One parameter's whole optimizer update as ONE graph node, for backends with a fused update kernel
// (Backend.optimizerUpdate: the wasm backend's SIMD Adam/AdamW, SGD, RMSprop and Adagrad). Written
// with elementwise ops (traced-optimizers.ts, other backends) the traced Adam update is three fused
// kernels plus a copy per parameter and state tensor; this node is one pass over them.
//
//   %p', %m', %v' = optimizerUpdate[rule=adam, state=[expAvg, expAvgSq]] %p %grad %m %v
//
// Inputs: the parameter, its gradient, then its state tensors in `stateNames` order; outputs: the
// new parameter and the new state, which the trace writes back into the same tensors (graph writes).
// The per-step numbers (lr, bias corrections, SGD's first step) live in the attrs' `cell`, a JS
// object the traced optimizer's replay hook refreshes before every run, so a scheduler's lr is
// honoured without retracing; nothing else of the rule changes after tracing (the hook checks).
//
// Two ways to run it, same bits (both are the backend's kernel on the same values):
//   - `execute` (any interpreter run): the kernel on fresh copies of the parameter and state, which
//     become the outputs; the graph writes then copy them back. Functional, so any pass order is fine.
//   - `runOptimizerUpdateInPlace` (the compiled wasm replay, src/compiler/wasm-kernels.ts): the
//     kernel on the parameter and state tensors themselves, the outputs being those tensors (their
//     writes are then copies onto themselves, which the heap writer skips). Only where
//     `optimizerUpdateInPlaceSafe` proves that nothing reads the old values after the node.
// The node is impure (graph-ops.ts isImpureNode): CSE never merges two updates, DCE keeps it.
import { TesseraError, fmtShape } from '../core/errors.js';
import { sizeOf, shapesEqual } from '../core/shape.js';
import { itemsize } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import type { OptimizerRule } from '../backend/backend.js';
import { clone } from '../ops/shape.js';
import type { ValueInfo } from '../ops/primitives.js';
import type { Graph, GraphNode } from './graph.js';
import { registerGraphOp } from './graph-ops.js';
import { withoutRecording } from './trace.js';

/** The rule of the next run; the traced optimizer's replay hook replaces `rule` before every run. */
export interface OptimizerRuleCell {
  rule: OptimizerRule;
}

export interface OptimizerUpdateAttrs {
  cell: OptimizerRuleCell;
  /** Names of the state inputs (inputs 2..) and outputs (1..), as the backend's kernel expects them. */
  stateNames: string[];
}

export const OPTIMIZER_UPDATE_OP = 'optimizerUpdate';

/** How many updates ran in place on the parameter's memory, and how many on copies (tests count them). */
export const optimizerUpdateCounts = { inPlace: 0, onCopies: 0 };

function runKernel(attrs: OptimizerUpdateAttrs, param: Tensor, grad: Tensor, state: readonly Tensor[]): void {
  const backend = param.storage.backend;
  const named: Record<string, Tensor> = {};
  attrs.stateNames.forEach((n, i) => { named[n] = state[i]!; });
  if (backend.optimizerUpdate === undefined || !backend.optimizerUpdate({ rule: attrs.cell.rule, param, grad, state: named })) {
    throw new TesseraError(`optimizerUpdate: backend '${backend.name}' has no fused update for this ${param.dtype} parameter of shape ${fmtShape(param.shape)} ` +
      `(rule '${attrs.cell.rule.kind}'); the traced optimizer emits this node only for float32 parameters of backends with Backend.optimizerUpdate.`);
  }
}

/** The update on copies of the parameter and state: the outputs [new parameter, ...new state]. */
export function runOptimizerUpdateOnCopies(inputs: readonly Tensor[], attrs: OptimizerUpdateAttrs): Tensor[] {
  const [param, grad, ...state] = inputs as [Tensor, Tensor, ...Tensor[]];
  const outs = withoutRecording(() => [clone(param), ...state.map((s) => clone(s))]);
  runKernel(attrs, outs[0]!, grad, outs.slice(1));
  optimizerUpdateCounts.onCopies++;
  return outs;
}

/** The update in place (see optimizerUpdateInPlaceSafe): the outputs are the input tensors themselves. */
export function runOptimizerUpdateInPlace(inputs: readonly Tensor[], attrs: OptimizerUpdateAttrs): Tensor[] {
  const [param, grad, ...state] = inputs as [Tensor, Tensor, ...Tensor[]];
  runKernel(attrs, param, grad, state);
  optimizerUpdateCounts.inPlace++;
  return [param, ...state];
}

/**
 * Whether node `index` of `g` (an optimizerUpdate) may overwrite its parameter and state inputs:
 * each of them is a graph parameter (a live tensor) that the graph's last data write to that tensor
 * sets to the node's matching output, no other node reads it at or after this node, and it is not a
 * graph output, a guard or another write's value. Then running in place changes nothing anyone can
 * observe: the old values are dead, and the tensor ends up holding the new value either way.
 * Checked on the final (optimized) graph, so it holds whatever order the passes left.
 */
export function optimizerUpdateInPlaceSafe(g: Graph, index: number): boolean {
  const node = g.nodes[index]!;
  const mutated = [node.inputs[0]!, ...node.inputs.slice(2)];
  const newValues = node.outputs;
  if (new Set(node.inputs).size !== node.inputs.length) return false;
  const pinned = new Set<number>([...g.outputs, ...g.guards.map((x) => x.value)]);
  return mutated.every((v, k) => {
    if (g.value(v).kind !== 'parameter' || pinned.has(v)) return false;
    const target = g.parameters.get(v)!;
    const dataWrites = g.writes.filter((w) => w.kind === 'data' && w.target === target);
    if (dataWrites.length === 0 || dataWrites[dataWrites.length - 1]!.value !== newValues[k]) return false;
    if (g.writes.some((w) => w.value === v)) return false;
    return g.nodes.every((n, i) => i < index || (i === index ? true : !n.inputs.includes(v)));
  });
}

/** Whether a node is an optimizer update (impure: it stands for writes into live tensors). */
export function isOptimizerUpdateNode(n: Pick<GraphNode, 'op'>): boolean {
  return n.op === OPTIMIZER_UPDATE_OP;
}

const bytes = (v: ValueInfo): number => sizeOf(v.shape) * itemsize(v.dtype);

registerGraphOp(OPTIMIZER_UPDATE_OP, {
  infer: (inputs, attrs) => {
    const a = attrs as OptimizerUpdateAttrs;
    const [param, grad, ...state] = inputs;
    if (param === undefined || grad === undefined || state.length !== a.stateNames.length) {
      throw new TesseraError(`optimizerUpdate: expects the parameter, its gradient and ${a.stateNames.length} state tensor(s) (${a.stateNames.join(', ')}), got ${inputs.length} inputs.`);
    }
    for (const v of [grad, ...state]) {
      if (!shapesEqual(v.shape, param.shape)) {
        throw new TesseraError(`optimizerUpdate: an input of shape ${fmtShape(v.shape)} does not match the parameter's shape ${fmtShape(param.shape)}.`);
      }
    }
    return [param, ...state].map((v) => ({ shape: [...v.shape], dtype: v.dtype }));
  },
  // About ten flops per element; reads parameter, gradient and state, writes parameter and state.
  cost: (inputs, _attrs, outputs) => ({
    flops: 10 * sizeOf(inputs[0]!.shape),
    bytesRead: inputs.reduce((s, v) => s + bytes(v), 0),
    bytesWritten: outputs.reduce((s, v) => s + bytes(v), 0),
  }),
  execute: (inputs, attrs) => runOptimizerUpdateOnCopies(inputs, attrs as OptimizerUpdateAttrs),
});
