// Adapter from a traced Graph to the planner's plain op graph (src/plan/op-graph.ts), so the
// intra-operator sharding ILP can plan a real traced model. Tensors are seen as 2-D
// [tokens, features] (all leading dims flattened); views that keep that reading (reshapes that
// only merge/split leading dims, expands of a weight over the batch) name the same tensor;
// matmuls need a 2-D weight on the right; elementwise ops (primitive or fused) keep the inputs of
// the output's shape (broadcast biases are dropped: they are tiny and follow the feature split).
// Anything else (reductions such as layernorm's, attention's head permutes) is refused with the op
// named, since the op graph cannot express it.
import { itemsize } from '../core/dtype.js';
import { TesseraError, fmtShape } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { Graph, ValueId } from '../graph/graph.js';
import { isElementwisePrimitive } from '../graph/graph-ops.js';
import { isRandomPrimitive } from '../ops/primitives.js';
import type { OpGraph, OpNode, TensorInfo } from '../plan/op-graph.js';

export interface ToOpGraphOptions {
  /** Names for parameters (default `param%<id>`). */
  names?: Map<Tensor, string>;
  /** Bytes per element in the plan (default: the graph's dtype size). */
  bytesPerElement?: number;
  /**
   * Plan for this many tokens instead of the traced count (trace small, plan at production batch
   * and sequence sizes): activations whose token count equals the first input's are resized.
   */
  tokens?: number;
}

const as2d = (shape: readonly number[]): number[] =>
  shape.length === 0 ? [1, 1] : [shape.slice(0, -1).reduce((p, d) => p * d, 1), shape[shape.length - 1]!];

export function toOpGraph(g: Graph, opts: ToOpGraphOptions = {}): OpGraph {
  const traced = g.inputs.length > 0 ? as2d(g.value(g.inputs[0]!).shape)[0]! : undefined;
  const plan2d = (shape: readonly number[], parameter: boolean): number[] => {
    const s2 = as2d(shape);
    if (!parameter && opts.tokens !== undefined && s2[0] === traced) s2[0] = opts.tokens;
    return s2;
  };
  const tensors: TensorInfo[] = [];
  const ops: OpNode[] = [];
  const nameOf = new Map<ValueId, string>();
  const declare = (id: ValueId, name: string, parameter = false): string => {
    const v = g.value(id);
    tensors.push({ name, shape: plan2d(v.shape, parameter), bytesPerElement: opts.bytesPerElement ?? itemsize(v.dtype), ...(parameter ? { parameter } : {}) });
    nameOf.set(id, name);
    return name;
  };
  g.inputs.forEach((id, i) => declare(id, `input${i}`));
  for (const [id, p] of g.parameters) declare(id, opts.names?.get(p) ?? `param%${id}`, true);
  // Constants (and views / elementwise results of constants only) are scalars and masks folded
  // into the ops that use them; they are not tensors of the plan.
  const constant = new Set<ValueId>(g.constants.keys());
  const refuse = (op: string, why: string): never => {
    throw new TesseraError(`toOpGraph: ${op} ${why}; the planner's op graph has only [tokens, features] matmuls and elementwise ops.`);
  };
  for (const n of g.nodes) {
    const out = n.outputs[0]!;
    const outShape = g.value(out).shape;
    const src = n.inputs[0];
    // A random draw (a dropout mask) reads no tensor of the plan: like a constant, it folds into
    // the elementwise op that uses it.
    if ((n.inputs.length > 0 && n.inputs.every((v) => constant.has(v))) || isRandomPrimitive(n.op)) {
      n.outputs.forEach((o) => constant.add(o));
      continue;
    }
    if (n.op === 'reshape' || n.op === 'expand') {
      const inShape = g.value(src!).shape;
      const sameFeatures = inShape[inShape.length - 1] === outShape[outShape.length - 1];
      const sameTokens = as2d(inShape)[0] === as2d(outShape)[0];
      // A weight broadcast over the batch for a batched matmul keeps its 2-D identity.
      const weightBroadcast = n.op === 'expand' && inShape.length === 2 && g.parameters.has(src!);
      if (!(sameFeatures && sameTokens) && !weightBroadcast) refuse(`${n.op} ${fmtShape(inShape)} -> ${fmtShape(outShape)}`, 'changes the [tokens, features] reading');
      nameOf.set(out, nameOf.get(src!)!);
      continue;
    }
    if (n.op === 'matmul' || n.op === 'matmulEpilogue') {
      const b = g.value(n.inputs[1]!).shape;
      const bName = nameOf.get(n.inputs[1]!);
      const bInfo = tensors.find((x) => x.name === bName);
      if (bName === undefined || bInfo === undefined || bInfo.shape.length !== 2 || bInfo.shape[0] !== b[b.length - 2] || bInfo.shape[1] !== b[b.length - 1]) refuse(`matmul with right operand ${fmtShape(b)}`, 'is not a 2-D weight');
      if (n.op === 'matmul') {
        const name = declare(out, `v%${out}`);
        ops.push({ kind: 'matmul', name: `matmul%${out}`, inputs: [nameOf.get(n.inputs[0]!)!, bName!], output: name });
        continue;
      }
      // matmul + epilogue: the product as its own tensor, then the elementwise epilogue.
      const product = `v%${out}.product`;
      tensors.push({ name: product, shape: plan2d(outShape, false), bytesPerElement: opts.bytesPerElement ?? itemsize(g.value(out).dtype) });
      ops.push({ kind: 'matmul', name: `matmul%${out}`, inputs: [nameOf.get(n.inputs[0]!)!, bName!], output: product });
      const extra = n.inputs.slice(2).filter((v) => !constant.has(v) && as2d(g.value(v).shape).join(',') === as2d(outShape).join(',') && g.value(v).shape.length === outShape.length);
      const name = declare(out, `v%${out}`);
      ops.push({ kind: 'elementwise', name: `epilogue%${out}`, inputs: [product, ...new Set(extra.map((v) => nameOf.get(v)!))], output: name });
      continue;
    }
    if (isElementwisePrimitive(n.op) || n.op === 'fusedElementwise') {
      const spec = (n.attrs as { spec?: { reduce?: unknown } }).spec;
      if (spec?.reduce !== undefined) refuse(`fused reduction %${out}`, 'reduces');
      const want = as2d(outShape).join(',');
      const ins = n.inputs.filter((v) => !constant.has(v) && as2d(g.value(v).shape).join(',') === want && g.value(v).shape.length === outShape.length).map((v) => nameOf.get(v)!);
      const name = declare(out, `v%${out}`);
      if (ins.length > 0) ops.push({ kind: 'elementwise', name: `${n.op}%${out}`, inputs: [...new Set(ins)], output: name });
      continue;
    }
    refuse(n.op, 'is not a matmul, an elementwise op or a layout-preserving view');
  }
  return { tensors, ops };
}
