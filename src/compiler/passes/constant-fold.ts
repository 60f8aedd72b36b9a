// Constant folding: a node whose inputs are all constants (not inputs, not parameters, which change
// between calls) is evaluated once at compile time and becomes a constant. Impure nodes (random
// draws, which have no inputs, and control flow that draws) are never folded: they must draw
// fresh numbers on every run.
import { sizeOf } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { noGrad } from '../../autodiff/mode.js';
import type { Graph } from '../../graph/graph.js';
import { isImpureNode, opDef } from '../../graph/graph-ops.js';
import { withoutRecording } from '../../graph/trace.js';
import type { Pass, PassResult } from './pass.js';
import { isViewOp } from '../layouts.js';

/** Larger results stay computed at run time (folding would bloat the graph's constants). */
const MAX_FOLDED_ELEMENTS = 1 << 20;

export function foldConstants(input: Graph): PassResult {
  const g = input.clone();
  const changes: string[] = [];
  const kept: typeof g.nodes = [];
  // Views of constants are constant too, but stay views in the graph (folding a broadcast would
  // materialize it); their values are computed here only to fold the ops that consume them.
  const viewed = new Map<number, Tensor>();
  const constantValue = (v: number): Tensor | undefined => g.constants.get(v) ?? viewed.get(v);
  for (const n of g.nodes) {
    const ins = n.inputs.map(constantValue);
    const allConst = n.inputs.length > 0 && ins.every((x) => x !== undefined);
    const small = n.outputs.every((o) => sizeOf(g.value(o).shape) <= MAX_FOLDED_ELEMENTS);
    if (!allConst || !small || n.op === 'cond' || n.op === 'whileLoop' || isImpureNode(n)) {
      kept.push(n);
      continue;
    }
    const outs = withoutRecording(() => noGrad(() => opDef(n.op).execute(ins as Tensor[], n.attrs)));
    if (isViewOp(n.op)) {
      viewed.set(n.outputs[0]!, outs[0]!);
      kept.push(n);
      continue;
    }
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
