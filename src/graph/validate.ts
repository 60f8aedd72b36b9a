// Structural checks of a graph: every value defined once before its uses, every node's recorded
// output types equal to what its op infers, outputs and side effects pointing at defined values.
import { TesseraError, fmtShape } from '../core/errors.js';
import { shapesEqual } from '../core/shape.js';
import type { Graph, ValueId } from './graph.js';
import { opDef } from './graph-ops.js';

/** Throws a TesseraError describing the first problem found; returns the graph otherwise. */
export function validateGraph(g: Graph): Graph {
  const defined = new Set<ValueId>();
  const fail = (msg: string): never => {
    throw new TesseraError(`validateGraph: ${msg}`);
  };
  for (const id of g.inputs) defined.add(id);
  for (const id of g.constants.keys()) defined.add(id);
  for (const id of g.parameters.keys()) defined.add(id);
  g.nodes.forEach((n, i) => {
    for (const v of n.inputs) {
      if (!defined.has(v)) fail(`node ${i} (${n.op}) uses %${v} before it is defined (or it is never defined).`);
    }
    const outs = opDef(n.op).infer(n.inputs.map((v) => g.value(v)), n.attrs);
    if (outs.length !== n.outputs.length) fail(`node ${i} (${n.op}) records ${n.outputs.length} outputs but the op produces ${outs.length}.`);
    n.outputs.forEach((o, k) => {
      if (defined.has(o)) fail(`node ${i} (${n.op}) redefines %${o}.`);
      const v = g.value(o);
      const want = outs[k]!;
      if (!shapesEqual(v.shape, want.shape) || v.dtype !== want.dtype) {
        fail(`node ${i} (${n.op}) output %${o} is recorded as ${fmtShape(v.shape)} ${v.dtype} but the op gives ${fmtShape(want.shape)} ${want.dtype}.`);
      }
      if (v.producer !== i) fail(`value %${o} names node ${v.producer} as producer but node ${i} defines it (call reindex()).`);
      defined.add(o);
    });
  });
  for (const o of g.outputs) if (!defined.has(o)) fail(`output %${o} is never defined.`);
  for (const w of g.writes) if (!defined.has(w.value)) fail(`a write uses %${w.value}, which is never defined.`);
  for (const x of g.guards) if (!defined.has(x.value)) fail(`a guard reads %${x.value}, which is never defined.`);
  return g;
}
