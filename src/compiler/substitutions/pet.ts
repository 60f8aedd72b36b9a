// A partially equivalent transformation with a correction kernel (PET, Wang et al. OSDI'21).
//
// PET's observation: some transformations compute the right values on most output elements only;
// running a small correction kernel on the rest makes the whole thing equivalent, and the
// transformed program may run faster (a larger batch, a better-shaped kernel). The family here is
// PET's spatial split of a convolution into the batch: a stride-1 convolution over rows [0, H) of
// x [N, C, H, W] becomes ONE convolution over x's two row halves stacked along the batch,
// [2N, C, H/2, W]. Each half is padded with the convolution's own zero padding, so the output rows
// whose window crosses the cut are wrong: with padding (pt, pb) along H and pt + pb = KH - 1
// ("same"), rows [H/2 - pb, H/2 + pt). The correction convolves x's rows
// [H/2 - pb - pt, H/2 + pt + pb) without row padding, which yields exactly those pt + pb rows, and
// the result is assembled from the correct rows of both halves and the corrected rows:
//   y = conv(cat_N(x[:, :, :s], x[:, :, s:]))            s = H/2   (partially equivalent)
//   c = conv'(x[:, :, s-pb-pt : s+pt+pb])                pads along H = 0 (the correction)
//   out = cat_H(y[:N, :, :s-pb], c, y[N:, :, pt:])
// Every output element is then computed from the same input elements in the same order as the
// original, so the result is bit-identical (test/compiler/substitutions-pet.test.ts).
import type { Graph, GraphNode, ValueId } from '../../graph/graph.js';
import { opDef } from '../../graph/graph-ops.js';
import type { PatchAttrs } from '../../ops/primitives.js';
import { eliminateDeadCode } from '../passes/dce.js';
import { topoSort } from '../passes/merge-matmuls.js';
import type { Pass, PassResult } from '../passes/pass.js';

export interface ConvSplitOptions {
  /** Only convolutions whose output has at least this many elements (default 0: all eligible). */
  minOutputElements?: number;
}

/** Why a convDirect node cannot take the split (undefined when it can). */
function ineligible(g: Graph, n: GraphNode): string | undefined {
  if (n.op !== 'convDirect') return 'not a convDirect';
  const a = n.attrs as PatchAttrs;
  const x = g.value(n.inputs[0]!).shape, w = g.value(n.inputs[1]!).shape;
  if (x.length !== 4) return 'not a 2-D convolution';
  const kh = w[2]!, [pt, pb] = a.pads[0]!, h = x[2]!;
  if (a.stride[0] !== 1 || a.dilation[0] !== 1) return 'row stride or dilation is not 1';
  if (pt + pb !== kh - 1) return 'row padding is not "same"';
  if (h % 2 !== 0) return 'odd number of rows';
  if (h / 2 < pt + pb || h / 2 < kh) return 'too few rows for the correction window';
  return undefined;
}

/**
 * Rewrites the convDirect node at `index` of `g` (a new graph) into the row split + correction
 * described above. Throws when the node is not eligible.
 */
export function splitConvRows(input: Graph, index: number): Graph {
  const g = input.clone();
  const n = g.nodes[index]!;
  const why = ineligible(g, n);
  if (why !== undefined) throw new Error(`splitConvRows: node ${index} (${n.op}) cannot be split: ${why}.`);
  const a = n.attrs as PatchAttrs;
  const [x, w, bias] = n.inputs as [ValueId, ValueId, ValueId | undefined];
  const [N, C, H, W] = g.value(x).shape as [number, number, number, number];
  const [pt, pb] = a.pads[0]!;
  const s = H / 2;
  const added: GraphNode[] = [];
  const emit = (op: string, inputs: ValueId[], attrs: unknown): ValueId => {
    const [t] = opDef(op).infer(inputs.map((v) => g.value(v)), attrs);
    const id = g.newValue(t!.shape, t!.dtype, 'node');
    added.push({ op, inputs, attrs, outputs: [id] });
    return id;
  };
  const slice = (v: ValueId, axis: number, start: number, size: number): ValueId => {
    const shape = g.value(v).shape;
    return emit('slice', [v], { starts: shape.map((_, i) => (i === axis ? start : 0)), steps: shape.map(() => 1), sizes: shape.map((d, i) => (i === axis ? size : d)) });
  };
  const extra = bias === undefined ? [] : [bias];
  const stacked = emit('cat', [slice(x, 2, 0, s), slice(x, 2, s, s)], { axis: 0 });
  const y = emit('convDirect', [stacked, w, ...extra], a);
  const out = g.value(n.outputs[0]!).shape;
  const top = slice(slice(y, 0, 0, N), 2, 0, s - pb);
  const bottom = slice(slice(y, 0, N, N), 2, pt, s - pt);
  let result: ValueId;
  if (pt + pb === 0) result = emit('cat', [top, bottom], { axis: 2 });
  else {
    const window = slice(x, 2, s - pb - pt, 2 * (pt + pb));
    const corr = emit('convDirect', [window, w, ...extra], { ...a, pads: [[0, 0], ...a.pads.slice(1)] });
    result = emit('cat', [top, corr, bottom], { axis: 2 });
  }
  if (g.value(result).shape.join() !== out.join()) throw new Error(`splitConvRows: internal error, shape ${g.value(result).shape} != ${out} (C=${C}, W=${W}).`);
  g.nodes.push(...added);
  g.replaceAllUses(n.outputs[0]!, result);
  g.nodes = topoSort(g, g.nodes);
  g.reindex();
  return eliminateDeadCode(g).graph;
}

/** Applies splitConvRows to every eligible convolution of `g`. */
export function petConvSplit(input: Graph, opts: ConvSplitOptions = {}): PassResult {
  let g = input.clone();
  const changes: string[] = [];
  // The convolutions to split, by output value (ids survive the rewrites; the new convs are not split again).
  const targets = g.nodes
    .filter((n) => ineligible(g, n) === undefined && g.value(n.outputs[0]!).shape.reduce((p, d) => p * d, 1) >= (opts.minOutputElements ?? 0))
    .map((n) => n.outputs[0]!);
  for (const v of targets) {
    const i = g.nodes.findIndex((n) => n.outputs[0] === v);
    if (i < 0) continue;
    const n = g.nodes[i]!;
    const [pt, pb] = (n.attrs as PatchAttrs).pads[0]!;
    const shape = g.value(n.inputs[0]!).shape;
    const before = g.nodes.length;
    g = splitConvRows(g, i);
    changes.push(`pet-conv-split: convDirect on [${shape.join(', ')}] -> one conv on [${2 * shape[0]!}, ${shape[1]}, ${shape[2]! / 2}, ${shape[3]}] + ` +
      (pt + pb === 0 ? 'no correction (fully equivalent)' : `a correction conv of ${pt + pb} row(s)`) + ` (${before} -> ${g.nodes.length} nodes)`);
  }
  return { graph: g, changes };
}

/** PET's conv split as an opt-in pass (not cost-driven: on the cpu backends it adds work; see docs). */
export function convSplitPass(opts: ConvSplitOptions = {}): Pass {
  return { name: 'pet-conv-split', run: (g) => petConvSplit(g, opts) };
}
