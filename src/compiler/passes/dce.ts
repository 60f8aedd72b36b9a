// Dead-code elimination: keeps the nodes that outputs, writes or guards depend on, and every
// impure node (a random draw, or control flow that draws) even when nothing reads its result:
// dropping it would shift every later draw of the generator's stream, so a replay would no longer
// take the numbers the eager code takes.
import type { Graph, ValueId } from '../../graph/graph.js';
import { isImpureNode } from '../../graph/graph-ops.js';
import type { Pass, PassResult } from './pass.js';

export function eliminateDeadCode(input: Graph): PassResult {
  const g = input.clone();
  const live = new Set<ValueId>([...g.outputs, ...g.writes.map((w) => w.value), ...g.guards.map((x) => x.value)]);
  const keep: boolean[] = new Array(g.nodes.length).fill(false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (n.outputs.some((o) => live.has(o)) || isImpureNode(n)) {
      keep[i] = true;
      n.inputs.forEach((v) => live.add(v));
    }
  }
  const changes = g.nodes.flatMap((n, i) => (keep[i] ? [] : [`dce: removed ${n.op} -> ${n.outputs.map((o) => `%${o}`).join(', ')}`]));
  g.nodes = g.nodes.filter((_, i) => keep[i]);
  g.reindex();
  const before = g.constants.size + g.parameters.size;
  g.pruneValues();
  const dropped = before - g.constants.size - g.parameters.size;
  if (dropped > 0) changes.push(`dce: dropped ${dropped} unused constant(s)/parameter(s)`);
  return { graph: g, changes };
}

export const dce: Pass = { name: 'dce', run: eliminateDeadCode };
