// Common-subexpression elimination by value numbering: two nodes with the same op, attributes and
// (already numbered) inputs compute the same value; the later one is replaced by the earlier one.
// Commutative ops number their inputs sorted. Equal small constants share one number too.
// Impure nodes (random draws, control flow that draws) are never merged: two draws with equal
// attributes are two different tensors, and each must advance the generator.
import type { Graph, ValueId } from '../../graph/graph.js';
import { Graph as GraphClass } from '../../graph/graph.js';
import { untracedRead } from '../../graph/trace.js';
import { isImpureNode } from '../../graph/graph-ops.js';
import { commitRewrite, type Pass, type PassResult } from './pass.js';

const COMMUTATIVE = new Set(['add', 'mul', 'maximum', 'minimum', 'eq', 'ne', 'logicalAnd', 'logicalOr']);

function attrsKey(attrs: unknown): string | undefined {
  let nested = false;
  const s = JSON.stringify(attrs ?? {}, (_k, v) => {
    if (v instanceof GraphClass) nested = true;
    return v;
  });
  return nested ? undefined : s;
}

export function eliminateCommonSubexpressions(input: Graph): PassResult {
  const g = input.clone();
  const changes: string[] = [];
  const rep = new Map<ValueId, ValueId>();
  const canon = (v: ValueId): ValueId => rep.get(v) ?? v;
  const seenConst = new Map<string, ValueId>();
  for (const [id, t] of g.constants) {
    if (t.size > 64 || t.isDisposed) continue;
    const key = `${t.dtype}|${t.shape.join(',')}|${Array.from(untracedRead(() => t.data())).join(',')}`;
    const first = seenConst.get(key);
    if (first === undefined) seenConst.set(key, id);
    else {
      rep.set(id, first);
      changes.push(`cse: constant %${id} = %${first}`);
    }
  }
  const table = new Map<string, ValueId[]>();
  const kept: typeof g.nodes = [];
  for (const n of g.nodes) {
    n.inputs = n.inputs.map(canon);
    const ak = isImpureNode(n) ? undefined : attrsKey(n.attrs);
    if (ak === undefined) {
      kept.push(n);
      continue;
    }
    const ins = COMMUTATIVE.has(n.op) ? [...n.inputs].sort((a, b) => a - b) : n.inputs;
    // A recomputed node (checkpoint under jit) must not collapse into its forward twin.
    const key = `${n.op}|${ak}|${ins.join(',')}|${n.remat ?? ''}`;
    const prev = table.get(key);
    if (prev !== undefined) {
      n.outputs.forEach((o, k) => rep.set(o, prev[k]!));
      changes.push(`cse: ${n.outputs.map((o) => `%${o}`).join(', ')} = ${prev.map((o) => `%${o}`).join(', ')} (${n.op})`);
      continue;
    }
    table.set(key, n.outputs);
    kept.push(n);
  }
  commitRewrite(g, kept, canon);
  return { graph: g, changes };
}

export const cse: Pass = { name: 'cse', run: eliminateCommonSubexpressions };
