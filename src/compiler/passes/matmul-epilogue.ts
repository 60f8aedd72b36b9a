// Matmul + epilogue fusion: a matmul whose only use is a fused elementwise kernel over its result
// (bias add, then relu / gelu / anything elementwise) becomes one `matmulEpilogue` node: the bias
// and activation are applied to each output element before it is stored, saving a write and a read
// of the whole product.
import type { Graph, GraphNode } from '../../graph/graph.js';
import type { ScalarExpr } from '../codegen/kernel-ir.js';
import type { FusedSpec, MatmulEpilogueAttrs } from '../fused-ops.js';
import type { Pass, PassResult } from './pass.js';

export function fuseMatmulEpilogues(input: Graph): PassResult {
  const g = input.clone();
  const uses = g.uses();
  const changes: string[] = [];
  const removed = new Set<number>();
  const after = new Map<number, GraphNode>();
  g.nodes.forEach((n, i) => {
    if (n.op !== 'fusedElementwise') return;
    const spec = (n.attrs as { spec: FusedSpec }).spec;
    if (spec.reduce !== undefined) return;
    // The product is read as it is, or through one reshape: matmul folds [..., M, K] @ [K, N] into a
    // 2-D product whose result is reshaped back, and fusion absorbs that reshape into the kernel.
    const reshapedOnly = (j: number): boolean => {
      const views = spec.inputs[j]!.views;
      return views.length === 0 || (views.length === 1 && views[0]!.op === 'reshape');
    };
    const k = n.inputs.findIndex((v, j) => {
      const p = g.value(v).producer;
      return p !== undefined && !removed.has(p) && g.nodes[p]!.op === 'matmul' && uses.get(v) === 1 && reshapedOnly(j);
    });
    if (k < 0) return;
    const mi = g.value(n.inputs[k]!).producer!;
    const mm = g.nodes[mi]!;
    const productShape = g.value(n.inputs[k]!).shape;
    const reshaped = spec.inputs[k]!.views.length === 1;
    // Input k moves to the front; the rest keep their order. With a reshape, the epilogue iterates
    // over the product's own shape: every other input gets a reshape to it appended to its views,
    // and the result is reshaped back to the fused kernel's shape by a view node after it.
    const order = [k, ...n.inputs.map((_, j) => j).filter((j) => j !== k)];
    const where = new Map(order.map((j, pos) => [j, pos]));
    const body: ScalarExpr[] = spec.body.map((e) => (e.kind === 'load' ? { kind: 'load', input: where.get(e.input)! } : e));
    const inputs = order.map((j) => (j === k
      ? { views: [] }
      : reshaped ? { views: [...spec.inputs[j]!.views, { op: 'reshape' as const, attrs: { shape: [...productShape] } }] } : spec.inputs[j]!));
    const epilogue: FusedSpec = { ...spec, inputs, body, ...(reshaped ? { shape: [...productShape] } : {}) };
    const attrs: MatmulEpilogueAttrs = { epilogue };
    const ops = spec.body.filter((e) => e.kind === 'op').map((e) => (e as { op: string }).op);
    const nodeInputs = [mm.inputs[0]!, mm.inputs[1]!, ...order.slice(1).map((j) => n.inputs[j]!)];
    if (reshaped) {
      const flat = g.newValue([...productShape], spec.outDtype, 'node');
      g.nodes[i] = { op: 'matmulEpilogue', inputs: nodeInputs, attrs, outputs: [flat] };
      after.set(i, { op: 'reshape', inputs: [flat], attrs: { shape: [...spec.shape] }, outputs: [...n.outputs] });
    } else {
      g.nodes[i] = { op: 'matmulEpilogue', inputs: nodeInputs, attrs, outputs: [...n.outputs] };
    }
    removed.add(mi);
    changes.push(`matmul-epilogue: matmul + ${ops.join('+')} -> one kernel for %${n.outputs[0]}`);
  });
  g.nodes = g.nodes.flatMap((n, i) => (removed.has(i) ? [] : after.has(i) ? [n, after.get(i)!] : [n]));
  g.reindex();
  g.pruneValues();
  return { graph: g, changes };
}

export const matmulEpilogue: Pass = { name: 'matmul-epilogue', run: fuseMatmulEpilogues };
