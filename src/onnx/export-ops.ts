// ONNX export, per primitive: how each of tessera's primitives (ops/primitives.ts) becomes ONNX
// nodes. export.ts traces a function, walks the graph and calls the entry of each node's primitive
// with an Emitter: the node's attributes and traced types, the ONNX names of its inputs, and ways
// to add ONNX nodes and constants. An entry returns the ONNX name that holds the node's result.
//
// The table covers every primitive (a mapped type over PrimitiveName, so a new primitive does not
// compile until it is given a translation or a refusal). Refusals name the reason and what to do.
//
// Shapes are static: every shape, axis and index list is the traced one, written as a constant.
import { type DType, isFloating } from '../core/dtype.js';
import type { GraphNode, ValueId } from '../graph/graph.js';
import type { PrimitiveAttrs, PrimitiveName, ValueInfo } from '../ops/primitives.js';
import type { AttrDesc } from './encode.js';
import { ElemType } from './proto.js';

export type OnnxAttrs = Readonly<Record<string, AttrDesc>>;

/** What a translation sees of one traced node, and how it adds ONNX nodes. */
export interface Emitter<P extends PrimitiveName = PrimitiveName> {
  readonly attrs: PrimitiveAttrs[P];
  /** The default-domain opset being written (13 or later). */
  readonly opset: number;
  /**
   * Exporting with dynamic axes (export-dynamic.ts): a constant whose shape follows a traced size
   * (a causal mask [L, S]) should be computed from the runtime shapes instead, where ONNX can.
   */
  readonly dynamicShapes: boolean;
  /** Traced shape and dtype of each input, and of the output. */
  readonly inputs: readonly ValueInfo[];
  readonly output: ValueInfo;
  /** The traced node itself (its input value ids), for translations that look at their producers. */
  readonly node: GraphNode;
  /** The ONNX name of input i. */
  in(i: number): string;
  /** The ONNX name of any value translated so far (inputs of earlier nodes, parameters...). */
  nameOf(id: ValueId): string;
  /** Input i, cast to `dtype` first when it has another dtype. */
  inAs(i: number, dtype: DType): string;
  /** Adds an ONNX node with one output and returns the output's (fresh) name. */
  add(op: string, inputs: readonly string[], attrs?: OnnxAttrs): string;
  /** Adds an ONNX node with `n` outputs and returns their names. */
  addMulti(op: string, inputs: readonly string[], n: number, attrs?: OnnxAttrs): string[];
  /** `name` (a tensor of dtype `from`) cast to `to`; `name` itself when they are equal. */
  cast(name: string, from: DType, to: DType): string;
  /**
   * `x` reshaped to a static shape: nothing when its shape (if known) is that already; a Reshape
   * of a Reshape's result reads the first one's input instead (row-major either way).
   */
  reshape(x: string, to: readonly number[]): string;
  /** Records the static shape of an ONNX name that is not a traced value (for reshape). */
  declareShape(name: string, shape: readonly number[]): void;
  /** A 1-D INT64 constant (shapes, axes, pads, starts...). */
  ints(values: readonly number[]): string;
  /** A 0-D constant of a tessera dtype (the value rounded as tessera would store it). */
  scalar(value: number, dtype: DType): string;
  /** A constant of an ONNX element type. */
  constant(type: number, dims: readonly number[], values: ArrayLike<number>): string;
  /** The traced node that produces value `id`, if a node does (not for inputs, parameters, constants). */
  producerOf(id: ValueId): GraphNode | undefined;
  /** Traced shape and dtype of a value. */
  info(id: ValueId): ValueInfo;
  /** Names that one translation leaves for a later one (keyed by the caller's convention). */
  readonly memo: Map<string, string>;
  /** Throws a TesseraError naming the primitive. */
  fail(message: string): never;
}

export type Translator<P extends PrimitiveName> = (e: Emitter<P>) => string;
/** A primitive that export does not translate, with the reason (and what to do instead). */
export interface Refusal { readonly refuse: string }
export type TranslationTable = { readonly [P in PrimitiveName]: Translator<P> | Refusal };

/** The ONNX element type that stores a tessera dtype (int32 stays INT32). */
export function onnxElemType(dtype: DType): number {
  switch (dtype) {
    case 'float32': return ElemType.FLOAT;
    case 'float64': return ElemType.DOUBLE;
    case 'float16': return ElemType.FLOAT16;
    case 'bfloat16': return ElemType.BFLOAT16;
    case 'int32': return ElemType.INT32;
    case 'int8': return ElemType.INT8;
    case 'uint8': return ElemType.UINT8;
    case 'bool': return ElemType.BOOL;
  }
}

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const isSmallInt = (d: DType): boolean => d === 'bool' || d === 'int8' || d === 'uint8';

/** numpy broadcasting of shapes, or undefined when they do not broadcast. */
function broadcast(shapes: readonly (readonly number[])[]): number[] | undefined {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s[s.length - rank + i] ?? 1;
      if (k === d || k === 1) continue;
      if (d !== 1) return undefined;
      d = k;
    }
    out.push(d);
  }
  return out;
}

/**
 * The inputs of an elementwise node for an ONNX op that broadcasts: an input that tessera
 * broadcast with an `expand` view is read from before the expand, when the broadcast of the
 * operands still gives the output's shape (ONNX broadcasting is numpy's, like expand's).
 */
function broadcastInputs(e: Emitter): string[] {
  const sources = e.node.inputs.map((id, i) => {
    const p = e.producerOf(id);
    return p !== undefined && p.op === 'expand' ? { name: e.nameOf(p.inputs[0]!), shape: e.info(p.inputs[0]!).shape } : { name: e.in(i), shape: e.inputs[i]!.shape };
  });
  const b = broadcast(sources.map((s) => s.shape));
  if (b !== undefined && sameShape(b, e.output.shape)) return sources.map((s) => s.name);
  return e.node.inputs.map((_, i) => e.in(i));
}

/** A unary op; an input of another dtype than the result (an integer into a float op) is cast first. */
const unary = (op: string): Translator<PrimitiveName> => (e) => e.add(op, [e.inAs(0, e.output.dtype)]);

/** floor/ceil/round are the identity on integers (ONNX defines them for floats only). */
const rounding = (op: string): Translator<PrimitiveName> => (e) => (isFloating(e.inputs[0]!.dtype) ? e.add(op, [e.in(0)]) : e.in(0));

const binary = (op: string): Translator<PrimitiveName> => (e) => e.add(op, broadcastInputs(e));

/** And/Or take bool operands: others are cast (nonzero = true, as tessera's kernels read them). */
const logical = (op: string): Translator<PrimitiveName> => (e) => {
  const [a, b] = broadcastInputs(e);
  const dtype = e.inputs[0]!.dtype;
  return e.add(op, [e.cast(a!, dtype, 'bool'), e.cast(b!, dtype, 'bool')]);
};

/**
 * sum/prod/max/min over `axes` (keepdim or not). ReduceSum takes its axes as an input from opset
 * 13, the others from opset 18 (an attribute before). No axes is no reduction (tessera's meaning;
 * ONNX would reduce everything). bool/int8/uint8 are reduced as int32 (ONNX runtimes lack those
 * kernels): sum and prod give int32 in tessera too, max and min are cast back.
 */
function reduce(op: string): Translator<'sum' | 'prod' | 'max' | 'min'> {
  return (e) => {
    const { axes, keepdim } = e.attrs;
    const inType = e.inputs[0]!.dtype;
    const work: DType = isSmallInt(inType) ? 'int32' : inType;
    const x = e.cast(e.in(0), inType, work);
    if (axes.length === 0) return e.cast(x, work, e.output.dtype);
    const axesAsInput = op === 'ReduceSum' || e.opset >= 18;
    const keepdims = keepdim ? 1 : 0;
    const y = axesAsInput ? e.add(op, [x, e.ints(axes)], { keepdims }) : e.add(op, [x], { axes: [...axes], keepdims });
    return e.cast(y, work, e.output.dtype);
  };
}

/** ArgMax/ArgMin (first occurrence) give INT64: cast to tessera's int32. */
function argReduce(op: string): Translator<'argmax' | 'argmin'> {
  return (e) => {
    if (e.inputs[0]!.shape.length === 0) return e.scalar(0, 'int32'); // the index of a scalar's only element
    const y = e.add(op, [e.in(0)], { axis: e.attrs.axis, keepdims: e.attrs.keepdim ? 1 : 0, select_last_index: 0 });
    return e.add('Cast', [y], { to: ElemType.INT32 });
  };
}

const BACKWARD = (of: string): Refusal => ({
  refuse: `it is a backward-only primitive (part of the derivative of ${of}); exportOnnx exports forward (inference) functions: do not call backward() or grad() inside the exported function.`,
});
const RANDOM: Refusal = {
  refuse: 'the traced function draws random numbers, which an exported inference graph cannot reproduce. '
    + 'If this is dropout, call model.eval() before exporting (dropout is the identity in eval mode); otherwise pass the random values as an input.',
};
const LINALG: Refusal = { refuse: 'ONNX has no matrix decomposition or solve operator; compute it outside the exported function and pass the result as an input.' };

/**
 * Additive causal mask [L, S] for `scores` [..., L, S]: 0 where key j <= query i, -inf elsewhere
 * (top-left aligned). A constant, or with dynamic shapes (opset 14: Trilu) computed from the
 * scores' runtime shape: Where(Trilu(ones [L, S]), 0, -inf).
 */
function causalMask(e: Emitter, scores: string, l: number, s: number, dtype: DType): string {
  if (e.dynamicShapes && e.opset >= 14) {
    const ls = e.add('Slice', [e.add('Shape', [scores]), e.ints([-2]), e.ints([2 ** 31 - 1]), e.ints([0])]);
    const ones = e.add('ConstantOfShape', [ls], { value: { tensor: { type: ElemType.FLOAT, dims: [1], values: [1] } } });
    const lower = e.add('Cast', [e.add('Trilu', [ones], { upper: 0 })], { to: ElemType.BOOL });
    return e.add('Where', [lower, e.scalar(0, dtype), e.scalar(-Infinity, dtype)]);
  }
  const values = new Float64Array(l * s);
  for (let i = 0; i < l; i++) for (let j = i + 1; j < s; j++) values[i * s + j] = -Infinity;
  return e.constant(onnxElemType(dtype), [l, s], values);
}

export const TRANSLATIONS: TranslationTable = {
  // Unary float ops (ONNX has no log1p/expm1/rsqrt: composed, with the precision of the composition).
  exp: unary('Exp'),
  log: unary('Log'),
  log1p: (e) => { const x = e.inAs(0, e.output.dtype); return e.add('Log', [e.add('Add', [x, e.scalar(1, e.output.dtype)])]); },
  expm1: (e) => { const x = e.inAs(0, e.output.dtype); return e.add('Sub', [e.add('Exp', [x]), e.scalar(1, e.output.dtype)]); },
  sqrt: unary('Sqrt'),
  rsqrt: (e) => e.add('Reciprocal', [e.add('Sqrt', [e.inAs(0, e.output.dtype)])]),
  sin: unary('Sin'),
  cos: unary('Cos'),
  tanh: unary('Tanh'),
  sigmoid: unary('Sigmoid'),
  erf: unary('Erf'),
  // Exact GELU x·Φ(x) = x · 0.5 · (1 + erf(x / √2)) (ONNX's Gelu arrives only at opset 20).
  gelu: (e) => {
    const t = e.output.dtype;
    const x = e.inAs(0, t);
    const erf = e.add('Erf', [e.add('Mul', [x, e.scalar(Math.SQRT1_2, t)])]);
    return e.add('Mul', [x, e.add('Mul', [e.add('Add', [erf, e.scalar(1, t)]), e.scalar(0.5, t)])]);
  },
  geluGrad: BACKWARD('gelu'),
  // Unary ops that keep the dtype.
  neg: unary('Neg'),
  abs: unary('Abs'),
  relu: (e) => (isFloating(e.inputs[0]!.dtype) ? e.add('Relu', [e.in(0)]) : e.add('Max', [e.in(0), e.scalar(0, e.inputs[0]!.dtype)])),
  sign: unary('Sign'),
  floor: rounding('Floor'),
  ceil: rounding('Ceil'),
  round: rounding('Round'), // half to even in both
  logicalNot: (e) => e.add('Not', [e.cast(e.in(0), e.inputs[0]!.dtype, 'bool')]),
  // IsNaN is defined for floats; an integer is never NaN (x == x).
  isnan: (e) => (isFloating(e.inputs[0]!.dtype) ? e.add('IsNaN', [e.in(0)]) : e.add('Not', [e.add('Equal', [e.in(0), e.in(0)])])),
  // Binary ops (ONNX broadcasts, so tessera's expand views of the operands are skipped where possible).
  add: binary('Add'),
  sub: binary('Sub'),
  mul: binary('Mul'),
  div: binary('Div'), // integer division truncates in both
  pow: binary('Pow'),
  maximum: binary('Max'),
  minimum: binary('Min'),
  reluGrad: BACKWARD('relu'),
  eq: binary('Equal'),
  ne: (e) => e.add('Not', [e.add('Equal', broadcastInputs(e))]),
  lt: binary('Less'),
  le: binary('LessOrEqual'),
  gt: binary('Greater'),
  ge: binary('GreaterOrEqual'),
  logicalAnd: logical('And'),
  logicalOr: logical('Or'),
  where: (e) => e.add('Where', broadcastInputs(e)),
  cast: (e) => e.cast(e.in(0), e.inputs[0]!.dtype, e.attrs.dtype),
  sum: reduce('ReduceSum'),
  prod: reduce('ReduceProd'),
  max: reduce('ReduceMax'),
  min: reduce('ReduceMin'),
  argmax: argReduce('ArgMax'),
  argmin: argReduce('ArgMin'),
  // CumSum's axis is a 0-D input; bool/int8/uint8 sum as int32 (tessera's result dtype).
  cumsum: (e) => e.add('CumSum', [e.inAs(0, e.output.dtype), e.constant(ElemType.INT64, [], [e.attrs.axis])]),
  softmax: (e) => e.add('Softmax', [e.in(0)], { axis: e.attrs.axis }),
  logSoftmax: (e) => e.add('LogSoftmax', [e.in(0)], { axis: e.attrs.axis }),
  // (x − mean)·rsqrt(var + eps) over the last axis, biased variance: LayerNormalization (opset 17)
  // with scale 1 and bias 0, or before opset 17 the same from ReduceMean/Sub/Mul/Sqrt/Div.
  layerNormCore: (e) => {
    const x = e.in(0), { shape, dtype } = e.inputs[0]!;
    const d = shape[shape.length - 1]!;
    const type = onnxElemType(dtype);
    if (e.opset >= 17) {
      return e.add('LayerNormalization', [x, e.constant(type, [d], new Float64Array(d).fill(1)), e.constant(type, [d], new Float64Array(d))], {
        axis: -1, epsilon: { float: e.attrs.eps },
      });
    }
    const mean = (v: string) => e.add('ReduceMean', [v], { axes: [-1], keepdims: 1 });
    const centered = e.add('Sub', [x, mean(x)]);
    const variance = mean(e.add('Mul', [centered, centered]));
    return e.add('Div', [centered, e.add('Sqrt', [e.add('Add', [variance, e.scalar(e.attrs.eps, dtype)])])]);
  },
  layerNormRstd: BACKWARD('layerNorm'),
  layerNormCoreGrad: BACKWARD('layerNorm'),
  // softmax(q·kᵀ·scale (+ causal mask))·v as MatMul, Mul, Add of a constant [L, S] mask, Softmax, MatMul.
  attention: (e) => {
    const [q, k] = e.inputs as [ValueInfo, ValueInfo, ValueInfo];
    const r = q.shape.length;
    const perm = [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
    const kt = e.add('Transpose', [e.in(1)], { perm });
    let scores = e.add('Mul', [e.add('MatMul', [e.in(0), kt]), e.scalar(e.attrs.scale, q.dtype)]);
    if (e.attrs.causal) scores = e.add('Add', [scores, causalMask(e, scores, q.shape[r - 2]!, k.shape[r - 2]!, q.dtype)]);
    return e.add('MatMul', [e.add('Softmax', [scores], { axis: -1 }), e.in(2)]);
  },
  attentionGrad: BACKWARD('attention'),
  quantizedMatmul: {
    refuse: 'quantized weights (QuantizedLinear) are not exported: export the float model (before quant.quantize), '
      + 'or quantize the exported model with ONNX tools (onnxruntime.quantization).',
  },
  matmul: (e) => e.add('MatMul', [e.in(0), e.in(1)]),
  reshape: (e) => e.reshape(e.in(0), e.attrs.shape),
  permute: (e) => (e.attrs.perm.every((p, i) => p === i) ? e.in(0) : e.add('Transpose', [e.in(0)], { perm: [...e.attrs.perm] })),
  expand: (e) => (sameShape(e.inputs[0]!.shape, e.attrs.shape) ? e.in(0) : e.add('Expand', [e.in(0), e.ints(e.attrs.shape)])),
  // Per axis start, step and size → Slice over the axes that change (end = last index + 1).
  slice: (e) => {
    const { starts, steps, sizes } = e.attrs;
    const shape = e.inputs[0]!.shape;
    const axes = shape.map((_, i) => i).filter((i) => !(starts[i] === 0 && steps[i] === 1 && sizes[i] === shape[i]));
    if (axes.length === 0) return e.in(0);
    const ends = axes.map((i) => (sizes[i] === 0 ? starts[i]! : starts[i]! + (sizes[i]! - 1) * steps[i]! + 1));
    return e.add('Slice', [e.in(0), e.ints(axes.map((i) => starts[i]!)), e.ints(ends), e.ints(axes), e.ints(axes.map((i) => steps[i]!))]);
  },
  // Windows along `axis` as a new last dim: Gather with constant indices [W, size] (w·step + k)
  // puts [W, size] at `axis`, then a Transpose moves the window dim last.
  unfold: (e) => {
    const { axis, size, step } = e.attrs;
    const r = e.inputs[0]!.shape.length;
    const windows = e.output.shape[axis]!;
    const index = new Float64Array(windows * size);
    for (let w = 0; w < windows; w++) for (let k = 0; k < size; k++) index[w * size + k] = w * step + k;
    const g = e.add('Gather', [e.in(0), e.constant(ElemType.INT64, [windows, size], index)], { axis });
    if (axis === r - 1) return g;
    const perm = [...Array.from({ length: axis + 1 }, (_, i) => i), ...Array.from({ length: r - axis - 1 }, (_, i) => axis + 2 + i), axis + 1];
    return e.add('Transpose', [g], { perm });
  },
  contiguous: (e) => e.in(0),
  pad: (e) => {
    const { pads, value } = e.attrs;
    if (pads.every(([a, b]) => a === 0 && b === 0)) return e.in(0);
    const dtype = e.inputs[0]!.dtype;
    return e.add('Pad', [e.in(0), e.ints([...pads.map(([a]) => a), ...pads.map(([, b]) => b)]), e.scalar(value, dtype)], { mode: 'constant' });
  },
  sliceBackward: BACKWARD('slice'),
  unfoldBackward: BACKWARD('unfold'),
  cat: (e) => (e.inputs.length === 1 ? e.in(0) : e.add('Concat', e.node.inputs.map((_, i) => e.in(i)), { axis: e.attrs.axis })),
  // Slice with step −1 from the last element through the first (end −dim−1 clamps to "before 0").
  flip: (e) => {
    const axes = [...new Set(e.attrs.axes)].filter((a) => e.inputs[0]!.shape[a]! > 1);
    if (axes.length === 0) return e.in(0);
    const shape = e.inputs[0]!.shape;
    return e.add('Slice', [e.in(0), e.ints(axes.map(() => -1)), e.ints(axes.map((a) => -shape[a]! - 1)), e.ints(axes), e.ints(axes.map(() => -1))]);
  },
  // torch.gather = GatherElements (int32 indices are allowed). maxPool's gather of each window's
  // first maximum is the MaxPool's own output (see maxPoolIndices).
  gather: (e) => maxPoolGather(e) ?? rowGather(e) ?? e.add('GatherElements', [e.in(0), e.in(1)], { axis: e.attrs.axis }),
  scatterAdd: (e) => {
    if (e.opset < 16) e.fail('ScatterElements with reduction="add" needs opset 16 or later; export with { opset: 17 }.');
    return e.add('ScatterElements', [e.in(0), e.in(1), e.in(2)], { axis: e.attrs.axis, reduction: 'add' });
  },
  // A stable argsort = TopK over the whole axis, sorted (ONNX breaks ties by the lower index).
  argsort: (e) => {
    const { axis, descending } = e.attrs;
    const n = e.inputs[0]!.shape[axis]!;
    const [, indices] = e.addMulti('TopK', [e.in(0), e.ints([n])], 2, { axis, largest: descending ? 1 : 0, sorted: 1 });
    return e.add('Cast', [indices!], { to: ElemType.INT32 });
  },
  im2col: { refuse: 'the patch matrix of im2col (nn.functional.unfold) has no ONNX operator; export convolutions as layers (Conv2d...), which trace to one Conv.' },
  // The patch matrix [g, N·L, C/g·K] (transposed convolution, nn.functional.fold) folded back by
  // ONNX's Col2Im (opset 18), which takes [N, C·K, L]: the channel-major, kernel-minor columns of
  // each group side by side are exactly C·K channels in order.
  col2im: (e) => {
    if (e.opset < 18) e.fail('col2im (a transposed convolution) becomes ONNX Col2Im, which needs opset 18 or later; export with { opset: 18 }.');
    const { kernel, stride, dilation, pads, groups, inputShape } = e.attrs;
    const [n, c] = [inputShape[0]!, inputShape[1]!];
    const [, rows, width] = e.inputs[0]!.shape as [number, number, number];
    const blocks = rows / n;
    const split = e.reshape(e.in(0), [groups, n, blocks, width]);
    const perGroup = e.add('Transpose', [split], { perm: [1, 0, 3, 2] });
    e.declareShape(perGroup, [n, groups, width, blocks]);
    const columns = e.reshape(perGroup, [n, c * kernel.reduce((a, k) => a * k, 1), blocks]);
    return e.add('Col2Im', [columns, e.ints(inputShape.slice(2)), e.ints(kernel)], {
      dilations: dilation, strides: stride, pads: [...pads.map(([before]) => before), ...pads.map(([, after]) => after)],
    });
  },
  // A window's first maximum as a flat spatial index into x: MaxPool's Indices are flat indices
  // into the whole [N, C, *spatial] tensor, so the offset of each (n, c) plane is subtracted.
  maxPoolIndices: (e) => {
    const { kernel, stride, dilation } = e.attrs;
    const shape = e.inputs[0]!.shape;
    const [n, c] = [shape[0]!, shape[1]!];
    const [values, indices] = e.addMulti('MaxPool', [e.in(0)], 2, {
      kernel_shape: [...kernel], strides: [...stride], dilations: [...dilation], pads: kernel.flatMap(() => [0, 0]),
    });
    e.memo.set(`maxPoolValues:${e.node.outputs[0]}`, values!);
    e.declareShape(values!, e.output.shape);
    const plane = prod(shape.slice(2));
    const offsets = Float64Array.from({ length: n * c }, (_, i) => i * plane);
    const local = e.add('Sub', [indices!, e.constant(ElemType.INT64, [n, c, ...kernel.map(() => 1)], offsets)]);
    return e.add('Cast', [local], { to: ElemType.INT32 });
  },
  convDirect: (e) => {
    const { kernel, stride, dilation, pads, groups } = e.attrs;
    return e.add('Conv', e.node.inputs.map((_, i) => e.in(i)), {
      kernel_shape: [...kernel], strides: [...stride], dilations: [...dilation], group: groups,
      pads: [...pads.map(([a]) => a), ...pads.map(([, b]) => b)],
    });
  },
  convWeightGrad: BACKWARD('a convolution'),
  randomUniform: RANDOM,
  randomNormal: RANDOM,
  randomInteger: RANDOM,
  det: (e) => e.add('Det', [e.in(0)]),
  cholesky: LINALG,
  triangularSolve: LINALG,
  solve: LINALG,
  slogdet: LINALG,
  qr: LINALG,
  eigh: LINALG,
  svd: LINALG,
};

/**
 * An embedding lookup traces to a gather along axis 0 of the table [V, D] at ids [N, 1] expanded
 * to [N, D]: whole rows, which is ONNX's Gather(table, ids, axis 0), the operator runtimes make
 * fast for embeddings (GatherElements reads one index per element).
 */
function rowGather(e: Emitter<'gather'>): string | undefined {
  const [table, index] = e.inputs as [ValueInfo, ValueInfo];
  if (e.attrs.axis !== 0 || table.shape.length !== 2 || index.shape.length !== 2 || index.shape[1] !== table.shape[1]) return undefined;
  const expand = e.producerOf(e.node.inputs[1]!);
  if (expand?.op !== 'expand') return undefined;
  const ids = e.info(expand.inputs[0]!);
  if (ids.shape.length !== 2 || ids.shape[1] !== 1 || ids.shape[0] !== index.shape[0]) return undefined;
  return e.add('Gather', [e.in(0), e.reshape(e.nameOf(expand.inputs[0]!), [ids.shape[0]!])], { axis: 0 });
}

/**
 * maxPool traces to maxPoolIndices(padded) and a gather of reshape(padded) [N, C, H·W] at
 * reshape(indices) [N, C, L]: the values gathered are the MaxPool's own output, reshaped.
 */
function maxPoolGather(e: Emitter<'gather'>): string | undefined {
  const [dataId, indexId] = e.node.inputs as [ValueId, ValueId];
  const data = e.producerOf(dataId), index = e.producerOf(indexId);
  if (e.attrs.axis !== 2 || data?.op !== 'reshape' || index?.op !== 'reshape') return undefined;
  const pool = e.producerOf(index.inputs[0]!);
  if (pool?.op !== 'maxPoolIndices' || pool.inputs[0] !== data.inputs[0]) return undefined;
  // Each (n, c) plane flattened, read at its windows' flat indices, in order.
  const [planes, windows] = [e.info(pool.inputs[0]!).shape, e.info(pool.outputs[0]!).shape];
  const [d, i] = [e.inputs[0]!.shape, e.inputs[1]!.shape];
  if (d[0] !== planes[0] || d[1] !== planes[1] || d[2] !== prod(planes.slice(2)) || i[0] !== d[0] || i[1] !== d[1] || i[2] !== prod(windows.slice(2))) return undefined;
  const values = e.memo.get(`maxPoolValues:${pool.outputs[0]}`);
  if (values === undefined) return undefined;
  return e.reshape(values, e.output.shape);
}
