// Merging parallel matmuls that share their left operand (attention's Q, K and V projections of the
// same hidden state): h@Wq, h@Wk, h@Wv become h@[Wq|Wk|Wv] and three slices (views) of the result.
// One larger product reads h once and keeps the kernel busier. When the right operands are
// broadcast views (expand) of 2-D weights, the weights are concatenated before the broadcast.
import { shapesEqual } from '../../core/shape.js';
import type { Graph, GraphNode, ValueId } from '../../graph/graph.js';
import type { Pass, PassResult } from './pass.js';
import { isImpureNode } from '../../graph/graph-ops.js';

export function mergeParallelMatmuls(input: Graph): PassResult {
  const g = input.clone();
  const changes: string[] = [];
  const producer = (v: ValueId): GraphNode | undefined => {
    const p = g.value(v).producer;
    return p === undefined ? undefined : g.nodes[p];
  };
  // matmul folds [..., M, K] @ [K, N] into a 2-D product of a reshape of the left operand, so the
  // three projections of one hidden state arrive as three equal reshapes of it: they count as one
  // left operand (the first of them feeds the merged product).
  const lhsKey = (v: ValueId): string => {
    const p = producer(v);
    return p?.op === 'reshape' ? `${p.inputs[0]}:${g.value(v).shape.join(',')}` : String(v);
  };
  const byLhs = new Map<string, number[]>();
  g.nodes.forEach((n, i) => {
    // A recomputation (checkpoint under jit) merges only with its own nodes: merged into the forward's
    // product it would be computed in the forward and kept, which is what recomputing avoids.
    if (n.op === 'matmul') { const key = `${lhsKey(n.inputs[0]!)}|${n.remat ?? ''}`; byLhs.set(key, [...(byLhs.get(key) ?? []), i]); }
  });
  const inserts = new Map<number, GraphNode[]>();
  const removed = new Set<number>();
  for (const idxs of byLhs.values()) {
    if (idxs.length < 2) continue;
    const lhs = g.nodes[idxs[0]!]!.inputs[0]!;
    const rhs = idxs.map((i) => g.nodes[i]!.inputs[1]!);
    const rank = g.value(lhs).shape.length;
    const rhsShapes = rhs.map((v) => g.value(v).shape);
    const dtype = g.value(lhs).dtype;
    // All right operands must agree except in the last axis (the output features).
    if (!rhsShapes.every((s) => shapesEqual(s.slice(0, -1), rhsShapes[0]!.slice(0, -1)))) continue;
    const widths = rhsShapes.map((s) => s[rank - 1]!);
    const total = widths.reduce((a, b) => a + b, 0);
    const newNodes: GraphNode[] = [];
    const add = (op: string, inputs: ValueId[], attrs: unknown, shape: number[]): ValueId => {
      const id = g.newValue(shape, dtype, 'node');
      newNodes.push({ op, inputs, attrs, outputs: [id] });
      return id;
    };
    const expands = rhs.map(producer);
    let merged: ValueId;
    const batch = rhsShapes[0]!.slice(0, -2);
    if (expands.every((p) => p?.op === 'expand') && expands.every((p) => g.value(p!.inputs[0]!).shape.length === 2)) {
      const bases = expands.map((p) => p!.inputs[0]!);
      const k = g.value(bases[0]!).shape[0]!;
      if (!bases.every((b) => g.value(b).shape[0] === k)) continue;
      const cat = add('cat', bases, { axis: 1 }, [k, total]);
      merged = add('expand', [cat], { shape: [...batch, k, total] }, [...batch, k, total]);
    } else {
      merged = add('cat', rhs, { axis: rank - 1 }, [...rhsShapes[0]!.slice(0, -1), total]);
    }
    const outShape = [...g.value(lhs).shape.slice(0, -1), total];
    const product = add('matmul', [lhs, merged], {}, outShape);
    let start = 0;
    idxs.forEach((i, j) => {
      const out = g.nodes[i]!.outputs[0]!;
      const shape = g.value(out).shape;
      newNodes.push({
        op: 'slice', inputs: [product],
        attrs: { starts: shape.map((_, a) => (a === rank - 1 ? start : 0)), steps: shape.map(() => 1), sizes: [...shape] },
        outputs: [out],
      });
      start += widths[j]!;
      removed.add(i);
    });
    // The merged product must come after every right operand; place it at the last of the matmuls.
    const last = Math.max(...idxs);
    inserts.set(last, newNodes);
    changes.push(`merge-matmuls: ${idxs.length} matmuls sharing %${lhs} -> one matmul [${outShape.join(', ')}] + ${idxs.length} slices`);
  }
  if (changes.length === 0) return { graph: g, changes };
  // Uses of the slices come after the last matmul? A use of an earlier matmul's result could sit
  // between the matmuls; reorder topologically to be safe.
  const nodes = g.nodes.flatMap((n, i) => [...(removed.has(i) ? [] : [n]), ...(inserts.get(i) ?? [])]);
  try {
    g.nodes = topoSort(g, nodes);
  } catch {
    // A right operand depends on another merged product (a chain, not parallel matmuls): leave it.
    return { graph: input.clone(), changes: [] };
  }
  g.reindex();
  g.pruneValues();
  return { graph: g, changes };
}

/**
 * Orders nodes so every value is defined before use (stable for already ordered parts). Impure
 * nodes (random draws) keep their order among themselves: one waits until every impure node
 * before it has been placed, so the generator's draws stay in the eager order.
 */
export function topoSort(g: Graph, nodes: GraphNode[]): GraphNode[] {
  const defined = new Set<ValueId>([...g.inputs, ...g.constants.keys(), ...g.parameters.keys()]);
  const out: GraphNode[] = [];
  const pending = [...nodes];
  const impure = new Set(nodes.filter(isImpureNode));
  while (pending.length > 0) {
    const firstImpure = pending.find((n) => impure.has(n));
    const i = pending.findIndex((n) => n.inputs.every((v) => defined.has(v)) && (n === firstImpure || !impure.has(n)));
    if (i < 0) throw new Error('topoSort: the graph has a cycle or an undefined value (internal error).');
    const [n] = pending.splice(i, 1);
    out.push(n!);
    n!.outputs.forEach((o) => defined.add(o));
  }
  return out;
}

export const mergeMatmuls: Pass = { name: 'merge-matmuls', run: mergeParallelMatmuls };
