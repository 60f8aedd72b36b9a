// A pass takes a graph and returns a new graph plus a record of what it changed (the input graph is
// never modified, so passes compose and can be tested for equivalence against their input).
import type { Graph } from '../../graph/graph.js';

export interface PassResult {
  graph: Graph;
  /** One line per rewrite, e.g. "cse: %12 = %7 (mul)". Empty when nothing changed. */
  changes: string[];
}

export interface Pass {
  name: string;
  run(g: Graph): PassResult;
}
