// Static layouts: which values own memory and which are views. A view primitive's output is a
// strided layout over its input's buffer (known at compile time, since every layout is a function
// of shapes and the parameters' own strides); everything else — and a reshape that cannot be a
// view — owns a contiguous buffer. Planner and executor share this analysis.
import { contiguousStrides, viewStrides } from '../core/shape.js';
import type { Graph, ValueId } from '../graph/graph.js';
import { isPrimitive } from '../graph/graph-ops.js';
import { primitives, type Layout } from '../ops/primitives.js';

export interface ValueLayout {
  /** The value whose buffer this one reads (itself for buffer owners). */
  base: ValueId;
  layout: Layout;
}

export function isViewOp(op: string): boolean {
  return isPrimitive(op) && primitives[op].view !== undefined;
}

/** Layout of every value; values of view nodes point at their base's buffer. */
export function staticLayouts(g: Graph): Map<ValueId, ValueLayout> {
  const out = new Map<ValueId, ValueLayout>();
  const own = (id: ValueId): void => {
    const v = g.value(id);
    out.set(id, { base: id, layout: { shape: [...v.shape], strides: contiguousStrides(v.shape), offset: 0 } });
  };
  g.inputs.forEach(own);
  for (const [id, t] of [...g.constants, ...g.parameters]) out.set(id, { base: id, layout: { shape: [...t.shape], strides: [...t.strides], offset: t.offset } });
  for (const n of g.nodes) {
    if (isViewOp(n.op)) {
      const src = out.get(n.inputs[0]!)!;
      if (n.op === 'reshape') {
        const shape = (n.attrs as { shape: number[] }).shape;
        const strides = viewStrides(src.layout.shape, src.layout.strides, shape);
        if (strides === undefined) {
          own(n.outputs[0]!); // the copy dispatch would make
          continue;
        }
        out.set(n.outputs[0]!, { base: src.base, layout: { shape: [...shape], strides, offset: src.layout.offset } });
        continue;
      }
      const f = primitives[n.op as 'permute'].view! as (l: Layout, a: unknown) => Layout;
      out.set(n.outputs[0]!, { base: src.base, layout: f(src.layout, n.attrs) });
    } else n.outputs.forEach(own);
  }
  return out;
}
