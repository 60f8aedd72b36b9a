// A pass takes a graph and returns a new graph plus a record of what it changed (the input graph is
// never modified, so passes compose and can be tested for equivalence against their input).
import type { Graph, ValueId } from '../../graph/graph.js';

export interface PassResult {
  graph: Graph;
  /** One line per rewrite, e.g. "cse: %12 = %7 (mul)". Empty when nothing changed. */
  changes: string[];
}

export interface Pass {
  name: string;
  run(g: Graph): PassResult;
}

/**
 * Finishes a pass that dropped nodes and redirected values: keeps `kept`, points the graph's
 * outputs, writes and guards at the replacement values, and renumbers.
 */
export function commitRewrite(g: Graph, kept: Graph['nodes'], canon: (v: ValueId) => ValueId): void {
  g.nodes = kept;
  g.outputs = g.outputs.map(canon);
  for (const w of g.writes) w.value = canon(w.value);
  for (const x of g.guards) x.value = canon(x.value);
  g.reindex();
  g.pruneValues();
}
