// Constant folding: a node whose inputs are all constants (not inputs, not parameters, which change
// between calls) is evaluated once at compile time and becomes a constant.
import { sizeOf } from '../../core/shape.js';
import { noGrad } from '../../autodiff/mode.js';
import type { Graph } from '../../graph/graph.js';
import { opDef } from '../../graph/graph-ops.js';
import { withoutRecording } from '../../graph/trace.js';
import type { Pass, PassResult } from './pass.js';
import { isViewOp } from '../layouts.js';

/** Larger results stay computed at run time (folding would bloat the graph's constants). */
const MAX_FOLDED_ELEMENTS = 1 << 20;

export function foldConstants(input: Graph): PassResult {
  const g = input.clone();
  const changes: string[] = [];
  const kept: typeof g.nodes = [];
  for (const n of g.nodes) {
    const allConst = n.inputs.length > 0 && n.inputs.every((v) => g.constants.has(v));
    const small = n.outputs.every((o) => sizeOf(g.value(o).shape) <= MAX_FOLDED_ELEMENTS);
    // Views of constants stay views: folding them would materialize broadcasts into big constants.
    if (!allConst || !small || n.op === 'cond' || n.op === 'whileLoop' || isViewOp(n.op)) {
      kept.push(n);
      continue;
    }
    const outs = withoutRecording(() => noGrad(() => opDef(n.op).execute(n.inputs.map((v) => g.constants.get(v)!), n.attrs)));
    n.outputs.forEach((o, k) => {
      const v = g.value(o);
      v.kind = 'constant';
      delete v.producer;
      g.constants.set(o, outs[k]!);
    });
    changes.push(`fold: ${n.op} -> constant ${n.outputs.map((o) => `%${o}`).join(', ')}`);
  }
  g.nodes = kept;
  g.reindex();
  g.pruneValues();
  return { graph: g, changes };
}

export const constantFold: Pass = { name: 'constant-fold', run: foldConstants };
