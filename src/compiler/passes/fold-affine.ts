// Inference folding of per-channel affine maps into the weights of the layer before them: a
// convolution or a linear layer followed by bias and an inference batchnorm,
// (z + b - mean) * gamma / sqrt(var + eps) + beta = z * s + t per output channel, becomes the same
// layer with its weights scaled by s along their output-channel axis. What follows the affine part
// (a relu) stays in the fused kernel. Two producers are recognized:
//   - matmul (a linear layer, or ops/nn's im2col + GEMM convolution): the channel is the matmul's
//     output column, W' = W * s per column, and `+ t` stays at the head of the fused kernel (the
//     matmul-epilogue pass then fuses it into the GEMM's store);
//   - convDirect (ops/nn's direct convolution): the channel is axis 1 of its [N, C_out, ...]
//     output, w' = w * s along axis 0 of w [C_out, C_in/groups, ...kernel], and the shift goes into
//     the conv's own bias, b' = b * s + t (created if absent), so nothing of the affine part stays
//     in the kernel; a kernel left with nothing to do (conv + batchnorm without a relu) is dropped.
//
// The pattern is found on the fused graph, so it does not depend on how the batchnorm was written:
// a fusedElementwise kernel that reads one matmul/convDirect result (through view nodes and its
// own views) and otherwise only constants, whose body starts with an expression that is affine in
// that result with a scale and shift that depend only on the output channel. Affinity is decided
// from the expression's structure; scale and shift are the prefix evaluated at z = 0 and 1, checked
// to be per channel by pushing each element's position in z through the views.
// Run `freezeParameters` first: the weights (and a conv bias) must be constants.
import { sizeOf } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { noGrad } from '../../autodiff/mode.js';
import { bind } from '../../ops/dispatch.js';
import { full, fromValues } from '../../ops/creation.js';
import type { PrimitiveName } from '../../ops/primitives.js';
import { clone } from '../../ops/shape.js';
import type { Graph, GraphNode, ValueId } from '../../graph/graph.js';
import { untracedRead, withoutRecording } from '../../graph/trace.js';
import type { ScalarExpr } from '../codegen/kernel-ir.js';
import { evaluateFused, type FusedSpec, type ViewStep } from '../fused-ops.js';
import { isViewOp } from '../layouts.js';
import { eliminateDeadCode } from './dce.js';
import type { Pass, PassResult } from './pass.js';

/** Parameters become constants holding a copy of their current values (for inference graphs). */
export function freezeParameterValues(input: Graph): PassResult {
  const g = input.clone();
  const changes: string[] = [];
  for (const [id, p] of [...g.parameters]) {
    g.parameters.delete(id);
    g.constants.set(id, withoutRecording(() => noGrad(() => clone(p).detach())));
    g.value(id).kind = 'constant';
    changes.push(`freeze: parameter %${id} -> constant`);
  }
  return { graph: g, changes };
}

export const freezeParameters: Pass = { name: 'freeze-parameters', run: freezeParameterValues };

/** The value of a constant or of a chain of views over one (computed, not added to the graph). */
function constantThroughViews(g: Graph, v: ValueId): Tensor | undefined {
  const c = g.constants.get(v);
  if (c !== undefined) return c;
  const p = g.value(v).producer;
  if (p === undefined) return undefined;
  const n = g.nodes[p]!;
  if (!isViewOp(n.op)) return undefined;
  const src = constantThroughViews(g, n.inputs[0]!);
  return src === undefined ? undefined : withoutRecording(() => noGrad(() => bind(n.op as 'reshape', [src], n.attrs as never)));
}

function dependsOn(body: readonly ScalarExpr[], input: number): boolean[] {
  const dep: boolean[] = [];
  body.forEach((e, i) => { dep[i] = e.kind === 'load' ? e.input === input : e.kind === 'op' ? e.args.some((a) => dep[a]) : false; });
  return dep;
}

/**
 * Which expressions are affine in z (dep: which depend on it): z itself, anything free of z, and
 * sums, differences, negations, products with a z-free factor and quotients by a z-free divisor
 * of affine expressions. Decided from the structure: a few sample points cannot tell, e.g.
 * relu(z·s + t) is affine at z = 0, 1, 2 whenever s and t have one sign.
 */
function affineIn(body: readonly ScalarExpr[], dep: readonly boolean[]): boolean[] {
  const affine: boolean[] = [];
  body.forEach((e, i) => {
    if (!dep[i] || e.kind === 'load') { affine[i] = true; return; }
    if (e.kind !== 'op' || !e.args.every((a) => affine[a])) { affine[i] = false; return; }
    const [x, y] = e.args as [number, number | undefined];
    affine[i] = e.op === 'add' || e.op === 'sub' || e.op === 'neg' ||
      (e.op === 'mul' && !(dep[x] && dep[y!])) || (e.op === 'div' && !dep[y!]);
  });
  return affine;
}

/** The layer whose output z the affine map follows, as the fold sees it. */
interface FoldTarget {
  /** The op, for the change log. */
  op: string;
  /** Its (constant) weights: new constants take their dtype and backend. */
  weights: Tensor;
  /** Output channels, and the channel of an element of z by its row-major position in z's buffer. */
  channels: number;
  channelOf(position: number): number;
  /** The shape of a per-channel vector broadcast over z (trailing axes). */
  channelShape: number[];
  /** Whether the layer adds the shift itself (a bias input); else `+ shift` stays at the head of the kernel. */
  takesShift: boolean;
  /** The layer with the per-channel scale folded into its weights (and the shift, if it takes it), writing `out`. */
  folded(g: Graph, scale: Float64Array, shift: Float64Array, out: ValueId): GraphNode;
}

/**
 * A matmul with constant weights [...B, K, N]: the channel is the output column, or, when the
 * weights differ per batch entry (the groups of an im2col convolution), the (batch entry, column) pair.
 */
function matmulTarget(g: Graph, mm: GraphNode): FoldTarget | undefined {
  const rhs = constantThroughViews(g, mm.inputs[1]!);
  if (rhs === undefined) return undefined;
  const shape = g.value(mm.outputs[0]!).shape;
  const [rows, columns] = shape.slice(-2) as [number, number];
  const perBatch = !rhs.strides.slice(0, -2).every((s) => s === 0);
  const batchShape = perBatch ? shape.slice(0, -2) : [];
  const channelShape = [...batchShape, 1, columns];
  return {
    op: 'matmul', weights: rhs, channels: sizeOf(batchShape) * columns, channelShape, takesShift: false,
    channelOf: perBatch ? (p) => Math.floor(p / (rows * columns)) * columns + (p % columns) : (p) => p % columns,
    folded: (g2, scale, _shift, out) => ({ op: 'matmul', inputs: [mm.inputs[0]!, g2.addConstant(scaled(rhs, scale, channelShape))], attrs: mm.attrs, outputs: [out] }),
  };
}

/** A direct convolution with constant weights (and bias, if any): the channel is axis 1 of z [N, C_out, ...]. */
function convTarget(g: Graph, conv: GraphNode): FoldTarget | undefined {
  const [x, wId, biasId] = conv.inputs as [ValueId, ValueId, ValueId | undefined];
  const w = constantThroughViews(g, wId);
  const bias = biasId === undefined ? undefined : constantThroughViews(g, biasId);
  if (w === undefined || (biasId !== undefined && bias === undefined)) return undefined;
  const shape = g.value(conv.outputs[0]!).shape;
  const channels = shape[1]!, spatial = sizeOf(shape.slice(2));
  // w is [C_out, C_in/groups, ...kernel]: output channel c is w[c] whatever the groups.
  const weightChannelShape = w.shape.map((d, i) => (i === 0 ? d : 1));
  return {
    op: 'convDirect', weights: w, channels, channelShape: [channels, ...shape.slice(2).map(() => 1)], takesShift: true,
    channelOf: (p) => Math.floor(p / spatial) % channels,
    folded: (g2, scale, shift, out) => {
      // conv(x, w, b) * s + t = conv(x, w * s, b * s + t), per output channel.
      const b = bias === undefined ? shift : Float64Array.from(untracedRead(() => bias.data()), (v, c) => v * scale[c]! + shift[c]!);
      const inputs = [x, g2.addConstant(scaled(w, scale, weightChannelShape)), g2.addConstant(valuesLike(w, b, [channels]))];
      return { op: 'convDirect', inputs, attrs: conv.attrs, outputs: [out] };
    },
  };
}

/** `values` as a constant tensor of `like`'s dtype and backend. */
function valuesLike(like: Tensor, values: Float64Array, shape: readonly number[]): Tensor {
  return fromValues(like.dtype === 'float64' ? values : Float32Array.from(values), shape, like.dtype, { backend: like.backend });
}

/** w times the per-channel scale laid out as `scaleShape` (broadcast over w's trailing axes), a new constant. */
function scaled(w: Tensor, scale: Float64Array, scaleShape: readonly number[]): Tensor {
  const s = valuesLike(w, scale, scaleShape);
  return withoutRecording(() => noGrad(() => clone(bind('mul', [w, bind('expand', [s], { shape: [...w.shape] })], {})).detach()));
}

/** Per channel values of `values` (laid over F's iteration space), or undefined if one is NaN, varies within a channel or is missing. */
function perChannel(values: Float64Array, positions: Int32Array, target: FoldTarget, tol: number): Float64Array | undefined {
  const ch = new Float64Array(target.channels).fill(NaN);
  for (let i = 0; i < values.length; i++) {
    const c = target.channelOf(positions[i]!);
    const v = values[i]!;
    if (Number.isNaN(v)) return undefined;
    if (Number.isNaN(ch[c]!)) ch[c] = v;
    else if (Math.abs(ch[c]! - v) > tol * (1 + Math.abs(v))) return undefined;
  }
  return ch.some(Number.isNaN) ? undefined : ch;
}

/** From a value back through view nodes used nowhere else to the matmul/convDirect that produces it. */
function layerThroughViews(g: Graph, v: ValueId, uses: Map<ValueId, number>): { layer: number; z: ValueId; views: ViewStep[] } | undefined {
  const views: ViewStep[] = [];
  for (let cur = v; uses.get(cur) === 1;) {
    const p = g.value(cur).producer;
    if (p === undefined) return undefined;
    const n = g.nodes[p]!;
    if (n.op === 'matmul' || n.op === 'convDirect') return { layer: p, z: cur, views };
    if (!isViewOp(n.op)) return undefined;
    views.unshift({ op: n.op as PrimitiveName, attrs: n.attrs });
    cur = n.inputs[0]!;
  }
  return undefined;
}

/** The row-major position in z (of `shape`) of each element of z seen through `views` (reshapes that copy included). */
function positionsThroughViews(shape: readonly number[], views: readonly ViewStep[]): Int32Array {
  const iota = fromValues(Float64Array.from({ length: sizeOf(shape) }, (_, i) => i), shape, 'float64', { backend: 'cpu' });
  return Int32Array.from(untracedRead(() => withoutRecording(() => noGrad(() =>
    views.reduce((x, v) => bind(v.op, [x], v.attrs as never), iota).data()))));
}

export function foldAffineIntoMatmul(input: Graph): PassResult {
  let g = input.clone();
  const changes: string[] = [];
  const uses = g.uses();
  const replaced = new Map<number, GraphNode[]>();
  g.nodes.forEach((f, fi) => {
    if (f.op !== 'fusedElementwise') return;
    const spec = (f.attrs as { spec: FusedSpec }).spec;
    if (spec.reduce !== undefined) return;
    const nonConst = f.inputs.map((v, j) => ({ v, j })).filter(({ v }) => constantThroughViews(g, v) === undefined);
    if (nonConst.length !== 1) return;
    const { v: read, j: k } = nonConst[0]!;
    // z, the layer's result, is read through view nodes (a grouped im2col conv's permute), then the kernel's own views.
    const found = layerThroughViews(g, read, uses);
    if (found === undefined) return;
    const { layer: mp, z } = found;
    const mm = g.nodes[mp]!;
    const target = mm.op === 'matmul' ? matmulTarget(g, mm) : convTarget(g, mm);
    if (target === undefined) return;
    const { shape: mShape, dtype } = g.value(z);
    const zViews = [...found.views, ...spec.inputs[k]!.views];
    const positions = positionsThroughViews(mShape, zViews);
    if (positions.length !== sizeOf(spec.shape)) return;
    const dep = dependsOn(spec.body, k);
    const affine = affineIn(spec.body, dep);
    const constInputs = f.inputs.map((v) => constantThroughViews(g, v));
    const evalPrefix = (a: number, zValue: number): Float64Array => {
      const prefix: FusedSpec = { ...spec, body: spec.body.slice(0, a + 1), outDtype: (spec.body[a] as { dtype?: 'float32' }).dtype ?? spec.outDtype };
      const ins = constInputs.map((c, j) => (j === k ? full(g.value(read).shape, zValue, { dtype }) : c!));
      return Float64Array.from(untracedRead(() => withoutRecording(() => noGrad(() => evaluateFused(prefix, ins).data()))));
    };
    // The last z-dependent expression, affine in z, through which every later use of z flows.
    for (let a = spec.body.length - 1; a >= 0; a--) {
      if (!dep[a]) continue;
      const dominates = spec.body.every((e, j) => j <= a || e.kind !== 'op' || e.args.every((x) => !dep[x] || x >= a));
      if (!dominates || !affine[a] || spec.body[a]!.kind !== 'op') continue;
      const affineDtype = (spec.body[a] as { dtype: 'float32' }).dtype;
      // A layer that adds the shift computes it in its own dtype: only when the affine part does too.
      if (target.takesShift && affineDtype !== dtype) continue;
      const [f0, f1] = [0, 1].map((c) => evalPrefix(a, c)) as [Float64Array, Float64Array];
      const scale = f1.map((x, i) => x - f0[i]!);
      const s = perChannel(scale, positions, target, 1e-5), t0 = perChannel(f0, positions, target, 1e-5);
      if (s === undefined || t0 === undefined) continue;
      // New body: z' (+ shift, read through the same views as z, unless the layer takes it), then
      // the rest of the old body with expression a replaced.
      const head: ScalarExpr[] = target.takesShift ? [{ kind: 'load', input: 0 }]
        : [{ kind: 'load', input: 0 }, { kind: 'load', input: 1 }, { kind: 'op', op: 'add', args: [0, 1], dtype: affineDtype }];
      const others = f.inputs.map((_, j) => j).filter((j) => j !== k);
      const inputPos = new Map<number, number>(others.map((j, p) => [j, p + (target.takesShift ? 1 : 2)]));
      const body = [...head];
      const map = new Map<number, number>([[a, head.length - 1]]);
      spec.body.forEach((e, j) => {
        if (j === a || dep[j] && j < a) return;
        if (e.kind === 'load') body.push({ kind: 'load', input: inputPos.get(e.input)! });
        else if (e.kind === 'literal') body.push(e);
        else body.push({ ...e, args: e.args.map((x) => map.get(x)!) });
        map.set(j, body.length - 1);
      });
      const shiftInput = target.takesShift ? [] : [{ views: [{ op: 'expand', attrs: { shape: [...mShape] } }, ...zViews] as ViewStep[] }];
      const shiftValue = target.takesShift ? [] : [g.addConstant(valuesLike(target.weights, t0, target.channelShape))];
      const pruned = pruneBody({ ...spec, inputs: [spec.inputs[k]!, ...shiftInput, ...others.map((j) => spec.inputs[j]!)], body },
        [read, ...shiftValue, ...others.map((j) => f.inputs[j]!)], map.get(spec.body.length - 1)!);
      // Nothing left to do but copy z as it is (conv + batchnorm, no relu): the layer writes F's output itself.
      const identity = pruned.spec.body.length === 1 && spec.outDtype === dtype && zViews.length === 0;
      // The folded layer computes z' in place of z (so the views reading z read z').
      replaced.set(mp, [target.folded(g, s, t0, identity ? f.outputs[0]! : z)]);
      replaced.set(fi, identity ? [] : [{ op: 'fusedElementwise', inputs: pruned.inputs, attrs: { spec: pruned.spec }, outputs: [...f.outputs] }]);
      changes.push(`fold-affine: per-channel scale and shift of %${f.outputs[0]} folded into the weights ${target.takesShift ? 'and bias ' : ''}of ${target.op} %${z}` +
        `${identity ? ', whose kernel is gone' : ''} (batchnorm folding)`);
      break;
    }
  });
  if (changes.length === 0) return { graph: g, changes };
  g.nodes = g.nodes.flatMap((n, i) => replaced.get(i) ?? [n]);
  g.reindex();
  g = eliminateDeadCode(g).graph;
  return { graph: g, changes };
}

export const foldAffine: Pass = { name: 'fold-affine', run: foldAffineIntoMatmul };

/** Drops body expressions the result (expression `result`) does not need and inputs nothing loads (renumbering both); the result ends the body. */
function pruneBody(spec: FusedSpec, inputs: ValueId[], result: number): { spec: FusedSpec; inputs: ValueId[] } {
  const live = new Array<boolean>(spec.body.length).fill(false);
  live[result] = true;
  for (let i = spec.body.length - 1; i >= 0; i--) {
    const e = spec.body[i]!;
    if (live[i] && e.kind === 'op') for (const a of e.args) live[a] = true;
  }
  const usedInputs = [...new Set(spec.body.flatMap((e, i) => (live[i] && e.kind === 'load' ? [e.input] : [])))].sort((a, b) => a - b);
  const inputMap = new Map(usedInputs.map((j, p) => [j, p]));
  const exprMap = new Map<number, number>();
  const body: ScalarExpr[] = [];
  spec.body.forEach((e, i) => {
    if (!live[i]) return;
    if (e.kind === 'load') body.push({ kind: 'load', input: inputMap.get(e.input)! });
    else if (e.kind === 'literal') body.push(e);
    else body.push({ ...e, args: e.args.map((a) => exprMap.get(a)!) });
    exprMap.set(i, body.length - 1);
  });
  return { spec: { ...spec, body, inputs: usedInputs.map((j) => spec.inputs[j]!) }, inputs: usedInputs.map((j) => inputs[j]!) };
}
