// Matmul + epilogue fusion: a matmul whose only use is a fused elementwise kernel over its result
// (bias add, then relu / gelu / anything elementwise) becomes one `matmulEpilogue` node: the bias
// and activation are applied to each output element before it is stored, saving a write and a read
// of the whole product.
import type { Graph } from '../../graph/graph.js';
import type { ScalarExpr } from '../codegen/kernel-ir.js';
import type { FusedSpec, MatmulEpilogueAttrs } from '../fused-ops.js';
import type { Pass, PassResult } from './pass.js';

export function fuseMatmulEpilogues(input: Graph): PassResult {
  const g = input.clone();
  const uses = g.uses();
  const changes: string[] = [];
  const removed = new Set<number>();
  g.nodes.forEach((n, i) => {
    if (n.op !== 'fusedElementwise') return;
    const spec = (n.attrs as { spec: FusedSpec }).spec;
    if (spec.reduce !== undefined) return;
    const k = n.inputs.findIndex((v, j) => {
      const p = g.value(v).producer;
      return p !== undefined && !removed.has(p) && g.nodes[p]!.op === 'matmul' && uses.get(v) === 1 && spec.inputs[j]!.views.length === 0;
    });
    if (k < 0) return;
    const mi = g.value(n.inputs[k]!).producer!;
    const mm = g.nodes[mi]!;
    // Input k moves to the front; the rest keep their order.
    const order = [k, ...n.inputs.map((_, j) => j).filter((j) => j !== k)];
    const where = new Map(order.map((j, pos) => [j, pos]));
    const body: ScalarExpr[] = spec.body.map((e) => (e.kind === 'load' ? { kind: 'load', input: where.get(e.input)! } : e));
    const epilogue: FusedSpec = { ...spec, inputs: order.map((j) => spec.inputs[j]!), body };
    const attrs: MatmulEpilogueAttrs = { epilogue };
    const ops = spec.body.filter((e) => e.kind === 'op').map((e) => (e as { op: string }).op);
    g.nodes[i] = { op: 'matmulEpilogue', inputs: [mm.inputs[0]!, mm.inputs[1]!, ...order.slice(1).map((j) => n.inputs[j]!)], attrs, outputs: [...n.outputs] };
    removed.add(mi);
    changes.push(`matmul-epilogue: matmul + ${ops.join('+')} -> one kernel for %${n.outputs[0]}`);
  });
  g.nodes = g.nodes.filter((_, i) => !removed.has(i));
  g.reindex();
  g.pruneValues();
  return { graph: g, changes };
}

export const matmulEpilogue: Pass = { name: 'matmul-epilogue', run: fuseMatmulEpilogues };
