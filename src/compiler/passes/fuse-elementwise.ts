// Elementwise fusion: chains and trees of elementwise primitives (and the views between them) become
// one `fusedElementwise` node, optionally ending in the reduction that consumes them (softmax's
// max and sum, layernorm's mean), so each group is one loop nest with no intermediate buffers.
//
// Grouping: an elementwise node is inlined into its consumer when its result has exactly one use and
// that use is another elementwise op or a reduction, possibly through single-use views (elementwise
// ops commute with views: view(f(x)) = f(view(x))). A one-element result whose every use is an
// elementwise op (directly or through views) is inlined into each of those groups, recomputed in
// each. Every other elementwise node or reduction roots a group. Leaves are loads of materialized
// values through their views; one-element constants become literals.
import { contiguousStrides } from '../../core/shape.js';
import type { Graph, GraphNode, ValueId } from '../../graph/graph.js';
import { untracedRead } from '../../graph/trace.js';
import { primitives, type PrimitiveName, type ReduceOp } from '../../ops/primitives.js';
import { isScalarOp } from '../codegen/js.js';
import type { ScalarExpr } from '../codegen/kernel-ir.js';
import { composeViews, type FusedSpec, type ViewStep } from '../fused-ops.js';
import type { Pass, PassResult } from './pass.js';
import { eliminateDeadCode } from './dce.js';

const REDUCE_OPS = new Set(['sum', 'prod', 'max', 'min']);
const isView = (op: string): boolean => op in primitives && primitives[op as PrimitiveName].view !== undefined;
const isCompute = (op: string): boolean => isScalarOp(op);

export function fuseElementwiseOps(input: Graph): PassResult {
  const g = input.clone();
  const uses = g.uses();
  const consumers = new Map<ValueId, number[]>();
  g.nodes.forEach((n, i) => new Set(n.inputs).forEach((v) => consumers.set(v, [...(consumers.get(v) ?? []), i])));
  const producer = (v: ValueId): GraphNode | undefined => {
    const p = g.value(v).producer;
    return p === undefined ? undefined : g.nodes[p];
  };

  /**
   * Whether a one-element result is used only as a direct input of elementwise ops: then each of
   * their groups recomputes it (a few scalar ops) instead of loading it from memory. That keeps
   * scalar masks and other non-float32 scalars (a loss scaler's skip flag, say) out of the kernels'
   * inputs, which the wasm emitter needs in float32. Same values: every intermediate is rounded to
   * its dtype either way.
   */
  const recomputedScalar = (n: GraphNode): boolean => {
    const v = n.outputs[0]!;
    return g.value(v).shape.reduce((a, b) => a * b, 1) === 1 && (consumers.get(v) ?? []).length > 1 && feedsOnlyCompute(v);
  };
  /** Every use of v is an input of an elementwise op, directly or through views (which fold into loads). */
  const feedsOnlyCompute = (v: ValueId): boolean => {
    const cs = consumers.get(v) ?? [];
    const slots = cs.reduce((k, c) => k + g.nodes[c]!.inputs.filter((x) => x === v).length, 0);
    if (slots === 0 || slots !== uses.get(v)) return false;
    return cs.every((c) => {
      const op = g.nodes[c]!.op;
      return isCompute(op) || (isView(op) && feedsOnlyCompute(g.nodes[c]!.outputs[0]!));
    });
  };

  /** Whether the node at index i (elementwise) folds into the group of its single consumer (or of each, see recomputedScalar). */
  const inlinable = (i: number): boolean => {
    const n = g.nodes[i]!;
    if (!isCompute(n.op)) return false;
    if (recomputedScalar(n)) return true;
    let v = n.outputs[0]!;
    for (;;) {
      if (uses.get(v) !== 1) return false;
      const cs = consumers.get(v) ?? [];
      if (cs.length !== 1) return false;
      const c = g.nodes[cs[0]!]!;
      if (isCompute(c.op) || REDUCE_OPS.has(c.op)) return true;
      if (!isView(c.op)) return false;
      v = c.outputs[0]!;
    }
  };
  const inlined = g.nodes.map((_, i) => inlinable(i));

  const changes: string[] = [];
  const removed = new Set<number>();
  const replacement = new Map<number, GraphNode>();

  g.nodes.forEach((root, ri) => {
    if (inlined[ri]) return;
    const isReduce = REDUCE_OPS.has(root.op);
    if (!isCompute(root.op) && !isReduce) return;
    const leaves: { value: ValueId; views: ViewStep[] }[] = [];
    const leafIndex = new Map<string, number>();
    const body: ScalarExpr[] = [];
    const exprIndex = new Map<string, number>();
    const members: number[] = [];
    const push = (key: string, e: ScalarExpr): number => {
      const have = exprIndex.get(key);
      if (have !== undefined) return have;
      body.push(e);
      exprIndex.set(key, body.length - 1);
      return body.length - 1;
    };
    const leaf = (v: ValueId, views: ViewStep[]): number => {
      const c = g.constants.get(v);
      if (c !== undefined && c.size === 1 && !c.isDisposed) {
        const value = untracedRead(() => c.data()[0]!);
        return push(`lit|${c.dtype}|${value}`, { kind: 'literal', value, dtype: c.dtype });
      }
      const key = JSON.stringify([v, views]);
      let li = leafIndex.get(key);
      if (li === undefined) {
        leaves.push({ value: v, views });
        li = leaves.length - 1;
        leafIndex.set(key, li);
      }
      return push(`load|${li}`, { kind: 'load', input: li });
    };
    /** The expression for value v seen through `views` (applied after v, in order). */
    const visit = (v: ValueId, views: ViewStep[]): number => {
      const pi = g.value(v).producer;
      const p = pi === undefined ? undefined : g.nodes[pi]!;
      if (p !== undefined && isView(p.op)) {
        const chain = [{ op: p.op as PrimitiveName, attrs: p.attrs }, ...views];
        const base = g.value(p.inputs[0]!);
        // Views only fold into loads when the layout composes without a copy.
        if (composeViews({ shape: [...base.shape], strides: contiguousStrides(base.shape), offset: 0 }, chain) !== undefined) {
          return visit(p.inputs[0]!, chain);
        }
      }
      if (p !== undefined && pi !== undefined && inlined[pi] && isCompute(p.op)) {
        members.push(pi);
        const args = p.inputs.map((x) => visit(x, views));
        const dtype = g.value(p.outputs[0]!).dtype;
        return push(JSON.stringify([p.op, args, dtype]), { kind: 'op', op: p.op, args, dtype });
      }
      return leaf(v, views);
    };
    let shape: number[];
    let reduce: FusedSpec['reduce'];
    if (isReduce) {
      const src = root.inputs[0]!;
      shape = [...g.value(src).shape];
      visit(src, []);
      const a = root.attrs as { axes: number[]; keepdim: boolean };
      reduce = { op: root.op as ReduceOp, axes: [...a.axes], keepdim: a.keepdim };
      // A reduction over a plain load with no elementwise work is still one kernel (no gain, no loss).
    } else {
      shape = [...g.value(root.outputs[0]!).shape];
      const args = root.inputs.map((x) => visit(x, []));
      const dtype = g.value(root.outputs[0]!).dtype;
      push(JSON.stringify([root.op, args, dtype, 'root']), { kind: 'op', op: root.op, args, dtype });
    }
    const spec: FusedSpec = { inputs: leaves.map((l) => ({ views: l.views })), body, shape, outDtype: g.value(root.outputs[0]!).dtype, ...(reduce ? { reduce } : {}) };
    // The body's last expression must be the result: for a reduction over an inlined tree it is.
    replacement.set(ri, { op: 'fusedElementwise', inputs: leaves.map((l) => l.value), attrs: { spec }, outputs: [...root.outputs] });
    for (const m of members) removed.add(m);
    if (members.length > 0) changes.push(`fuse: ${[...members.map((m) => g.nodes[m]!.op), root.op].join('+')} -> one kernel for %${root.outputs[0]}`);
  });
  g.nodes = g.nodes.flatMap((n, i) => (removed.has(i) ? [] : [replacement.get(i) ?? n]));
  g.reindex();
  // Views that only fed fused members are dead now (their producers are gone): drop them.
  const { graph } = eliminateDeadCode(g);
  return { graph, changes };
}

export const fuseElementwise: Pass = { name: 'fuse-elementwise', run: fuseElementwiseOps };
