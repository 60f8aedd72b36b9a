// Layout: transposes are folded into their consumers. The compiled matmul and fused kernels read
// any strided layout, so a materializing `contiguous` whose input is a view (a transpose, a
// permute of attention heads) is dropped when every consumer reads strides: the transpose costs no
// copy, it becomes the consumer's index arithmetic ("folded into the matmul").
import type { Graph } from '../../graph/graph.js';
import { primitives, type PrimitiveName } from '../../ops/primitives.js';
import type { Pass, PassResult } from './pass.js';

const STRIDED_READERS = new Set(['matmul', 'matmulEpilogue', 'fusedElementwise']);

export function foldTransposes(input: Graph): PassResult {
  const g = input.clone();
  const changes: string[] = [];
  const consumers = new Map<number, string[]>();
  for (const n of g.nodes) for (const v of n.inputs) consumers.set(v, [...(consumers.get(v) ?? []), n.op]);
  const outputs = new Set([...g.outputs, ...g.writes.map((w) => w.value), ...g.guards.map((x) => x.value)]);
  const rep = new Map<number, number>();
  g.nodes = g.nodes.filter((n) => {
    n.inputs = n.inputs.map((v) => rep.get(v) ?? v);
    if (n.op !== 'contiguous') return true;
    const src = n.inputs[0]!;
    const p = g.value(src).producer;
    const viaView = p !== undefined && (primitives[g.nodes[p]!.op as PrimitiveName]?.view !== undefined);
    const cs = consumers.get(n.outputs[0]!) ?? [];
    if (!viaView || outputs.has(n.outputs[0]!) || cs.length === 0 || !cs.every((c) => STRIDED_READERS.has(c))) return true;
    rep.set(n.outputs[0]!, src);
    changes.push(`layout: %${n.outputs[0]} contiguous(${g.nodes[p]!.op}) folded into ${[...new Set(cs)].join(', ')} (read by strides)`);
    return false;
  });
  g.reindex();
  g.pruneValues();
  return { graph: g, changes };
}

/** Matmuls whose operands are transposed/permuted views: counted for reports (no copy is made). */
export function stridedMatmulOperands(g: Graph): number {
  let n = 0;
  for (const node of g.nodes) {
    if (node.op !== 'matmul' && node.op !== 'matmulEpilogue') continue;
    for (const v of node.inputs.slice(0, 2)) {
      const p = g.value(v).producer;
      if (p !== undefined && g.nodes[p]!.op === 'permute') n++;
    }
  }
  return n;
}

export const layout: Pass = { name: 'layout', run: foldTransposes };
