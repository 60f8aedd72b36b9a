// Inference folding of per-channel affine maps into the weights of the matmul before them: a
// convolution (im2col + matmul, as ops/nn lowers it) or a linear layer followed by bias and an
// inference batchnorm, (z + b - mean) * gamma / sqrt(var + eps) + beta = z * s + t per output
// channel, becomes one matmul with weights W * s and the shift t added after it. What follows the
// affine part (a relu) stays in the fused kernel.
//
// The pattern is found on the fused graph, so it does not depend on how the batchnorm was written:
// a fusedElementwise kernel that reads one matmul result (through any views) and otherwise only
// constants, whose body starts with an expression that is affine in the matmul result with a scale
// and shift that depend only on the matmul's output column. Affinity is checked numerically (the
// prefix evaluated at 0, 1 and 2), the per-column values by walking the view layout.
// Run `freezeParameters` first: the weights and batchnorm parameters must be constants.
import { contiguousStrides, sizeOf } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { noGrad } from '../../autodiff/mode.js';
import { bind } from '../../ops/dispatch.js';
import { full, fromValues } from '../../ops/creation.js';
import { clone } from '../../ops/shape.js';
import type { Graph, GraphNode, ValueId } from '../../graph/graph.js';
import { untracedRead, withoutRecording } from '../../graph/trace.js';
import type { ScalarExpr } from '../codegen/kernel-ir.js';
import { composeViews, evaluateFused, type FusedSpec, type ViewStep } from '../fused-ops.js';
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

/** Per matmul column values of `values` (laid over F's iteration space), or undefined if they vary within a column. */
function perColumn(values: Float32Array | Float64Array, positions: Int32Array, n: number, tol: number): Float64Array | undefined {
  const col = new Float64Array(n).fill(NaN);
  for (let i = 0; i < values.length; i++) {
    const c = positions[i]! % n;
    const v = values[i]!;
    if (Number.isNaN(col[c]!)) col[c] = v;
    else if (Math.abs(col[c]! - v) > tol * (1 + Math.abs(v))) return undefined;
  }
  return col;
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
    const { v: z, j: k } = nonConst[0]!;
    const mp = g.value(z).producer;
    const mm = mp === undefined ? undefined : g.nodes[mp]!;
    if (mm === undefined || mm.op !== 'matmul' || uses.get(z) !== 1) return;
    const rhs = constantThroughViews(g, mm.inputs[1]!);
    if (rhs === undefined) return;
    const mShape = g.value(z).shape;
    const r = mShape.length, nCols = mShape[r - 1]!;
    // One weight matrix for every batch entry (batch 1, or a broadcast 2-D weight).
    const batchCount = sizeOf(mShape.slice(0, -2));
    if (batchCount !== 1 && !rhs.strides.slice(0, -2).every((s) => s === 0)) return;
    const layout = composeViews({ shape: [...mShape], strides: contiguousStrides(mShape), offset: 0 }, spec.inputs[k]!.views);
    if (layout === undefined) return;
    // Matmul-buffer position of each iteration point (row-major over F's shape).
    const count = sizeOf(spec.shape);
    const positions = new Int32Array(count);
    const idx = new Array<number>(spec.shape.length).fill(0);
    for (let p = 0; p < count; p++) {
      positions[p] = idx.reduce((s, x, d) => s + x * layout.strides[d]!, layout.offset);
      for (let d = idx.length - 1; d >= 0; d--) { if (++idx[d]! < spec.shape[d]!) break; idx[d] = 0; }
    }
    const dep = dependsOn(spec.body, k);
    const constInputs = f.inputs.map((v) => constantThroughViews(g, v));
    const evalPrefix = (a: number, zValue: number): Float64Array => {
      const prefix: FusedSpec = { ...spec, body: spec.body.slice(0, a + 1), outDtype: (spec.body[a] as { dtype?: 'float32' }).dtype ?? spec.outDtype };
      const ins = constInputs.map((c, j) => (j === k ? full(mShape, zValue, { dtype: g.value(z).dtype }) : c!));
      return Float64Array.from(untracedRead(() => withoutRecording(() => noGrad(() => evaluateFused(prefix, ins).data()))));
    };
    // The last z-dependent expression through which every later use of z flows.
    for (let a = spec.body.length - 1; a >= 0; a--) {
      if (!dep[a]) continue;
      const dominates = spec.body.every((e, j) => j <= a || e.kind !== 'op' || e.args.every((x) => !dep[x] || x >= a));
      if (!dominates || spec.body[a]!.kind !== 'op') continue;
      const [f0, f1, f2] = [0, 1, 2].map((c) => evalPrefix(a, c)) as [Float64Array, Float64Array, Float64Array];
      const scale = f1.map((x, i) => x - f0[i]!);
      if (!f2.every((x, i) => Math.abs(x - (2 * scale[i]! + f0[i]!)) <= 1e-4 * (1 + Math.abs(x)))) continue;
      const s = perColumn(scale, positions, nCols, 1e-5), t0 = perColumn(f0, positions, nCols, 1e-5);
      if (s === undefined || t0 === undefined || s.some(Number.isNaN) || t0.some(Number.isNaN)) continue;
      // W' = W * s (per column); the shift becomes an input read through the same views as z.
      const dtype = g.value(z).dtype;
      const sT = fromValues(dtype === 'float64' ? s : Float32Array.from(s), [nCols], dtype);
      const w2 = withoutRecording(() => noGrad(() => clone(bind('mul', [rhs, bind('expand', [sT], { shape: [...rhs.shape] })], {})).detach()));
      const shift = fromValues(dtype === 'float64' ? t0 : Float32Array.from(t0), [nCols], dtype);
      const wId = g.addConstant(w2);
      const shiftId = g.addConstant(shift);
      const [m2] = g.addNode('matmul', [mm.inputs[0]!, wId], {}, [{ shape: mShape, dtype }]);
      g.nodes.pop(); // added below, in place of the old matmul
      const zViews = spec.inputs[k]!.views;
      const shiftViews: ViewStep[] = [{ op: 'expand', attrs: { shape: [...mShape] } }, ...zViews];
      // New body: z' + shift, then the rest of the old body with expression a replaced.
      const others = f.inputs.map((_, j) => j).filter((j) => j !== k);
      const inputPos = new Map<number, number>(others.map((j, p) => [j, p + 2]));
      const body: ScalarExpr[] = [
        { kind: 'load', input: 0 }, { kind: 'load', input: 1 },
        { kind: 'op', op: 'add', args: [0, 1], dtype: (spec.body[a] as { dtype: 'float32' }).dtype },
      ];
      const map = new Map<number, number>([[a, 2]]);
      spec.body.forEach((e, j) => {
        if (j === a || dep[j] && j < a) return;
        if (e.kind === 'load') body.push({ kind: 'load', input: inputPos.get(e.input)! });
        else if (e.kind === 'literal') body.push(e);
        else body.push({ ...e, args: e.args.map((x) => map.get(x)!) });
        map.set(j, body.length - 1);
      });
      if (map.get(spec.body.length - 1) !== body.length - 1) continue;
      const pruned = pruneBody({ ...spec, inputs: [{ views: zViews }, { views: shiftViews }, ...others.map((j) => spec.inputs[j]!)], body },
        [m2!, shiftId, ...others.map((j) => f.inputs[j]!)]);
      replaced.set(mp!, [{ op: 'matmul', inputs: [mm.inputs[0]!, wId], attrs: {}, outputs: [m2!] }]);
      replaced.set(fi, [{ op: 'fusedElementwise', inputs: pruned.inputs, attrs: { spec: pruned.spec }, outputs: [...f.outputs] }]);
      changes.push(`fold-affine: per-channel scale and shift of %${f.outputs[0]} folded into the weights of matmul %${z} (batchnorm folding)`);
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

/** Drops body expressions the result does not need and inputs nothing loads (renumbering both). */
function pruneBody(spec: FusedSpec, inputs: ValueId[]): { spec: FusedSpec; inputs: ValueId[] } {
  const live = new Array<boolean>(spec.body.length).fill(false);
  live[spec.body.length - 1] = true;
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
